/* rl_bytes_refill(b, src, n): make the bytes object b hold src[0:n].
 *
 * Only for a bytes object nobody else can see (the loop's spare: a read's
 * `bytes` that came back from data_received() with no other reference),
 * allocated for at least n bytes.  Keeps the invariants of PyBytesObject:
 * ob_sval[ob_size] == 0 and ob_shash is -1 (not computed) for the new
 * contents.  The allocation itself is untouched, so the object is freed as
 * any bytes object is. */
#ifndef RINGLOOP_BYTES_H
#define RINGLOOP_BYTES_H

#include <Python.h>
#include <string.h>

static inline void
rl_bytes_refill(PyObject *b, const char *src, Py_ssize_t n)
{
    PyBytesObject *o = (PyBytesObject *)b;
    memcpy(o->ob_sval, src, (size_t)n);
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

#endif
