/* Bytes objects the loop writes into: only ones nobody else can see (the
 * loop's spare, a read's `bytes` that came back from data_received() with
 * no other reference, or one it just made), allocated for at least the n
 * bytes they get.  They keep the invariants of PyBytesObject:
 * ob_sval[ob_size] == 0 and ob_shash is -1 (not computed) for the new
 * contents.  The allocation itself is untouched, so the object is freed as
 * any bytes object is. */
#ifndef RINGLOOP_BYTES_H
#define RINGLOOP_BYTES_H

#include <Python.h>
#include <string.h>

/* rl_bytes_set_size(b, n): b now holds the first n bytes written into it
 * in place. */
static inline void
rl_bytes_set_size(PyObject *b, Py_ssize_t n)
{
    PyBytesObject *o = (PyBytesObject *)b;
    o->ob_sval[n] = '\0';
    Py_SET_SIZE(o, n);
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
    o->ob_shash = -1;
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif
}

/* rl_bytes_refill(b, src, n): b now holds src[0:n]. */
static inline void
rl_bytes_refill(PyObject *b, const char *src, Py_ssize_t n)
{
    memcpy(((PyBytesObject *)b)->ob_sval, src, (size_t)n);
    rl_bytes_set_size(b, n);
}

/* rl_bytes_resized(b, n): b, whose only reference the caller hands over,
 * resized to n bytes with _PyBytes_Resize (a realloc: in place when it
 * shrinks, and when it grows into a tail still free; bytes past the old
 * size are undefined); a new reference, or NULL with an exception. */
static inline PyObject *
rl_bytes_resized(PyObject *b, Py_ssize_t n)
{
    if (_PyBytes_Resize(&b, n) < 0)
        return NULL;
    return b;
}

#endif
