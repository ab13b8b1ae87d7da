/* Vectorcall entry points for the loop's hottest methods.
 *
 * asyncio's C Task calls loop.call_soon(step, context=ctx) on every step and
 * every Future calls it per done-callback.  Cython's generic wrapper parses
 * keywords through a general-purpose matcher; these entry points accept the
 * one keyword these methods take ("context") with a pointer comparison
 * first, build the *args tuple directly, and hand over to the Cython
 * implementation.  Behaviour and error messages are those of
 * `def call_soon(self, callback, *args, context=None)`. */
#ifndef RINGLOOP_FASTCALL_H
#define RINGLOOP_FASTCALL_H

#include <Python.h>

typedef PyObject *(*rl_soon_impl)(PyObject *self, PyObject *callback,
                                  PyObject *args, PyObject *context);

static rl_soon_impl rl_soon_impls[2];
static PyObject *rl_kw_context = NULL;
/* The last equal-but-distinct "context" string a caller used: on 3.11 the
 * C Task's keyword name is a static string that interning does not return,
 * so without this every Task step paid a full string comparison. */
static PyObject *rl_kw_context_seen = NULL;

static inline PyObject *
rl_soon_dispatch(int which, const char *name, PyObject *self,
                 PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *context = Py_None;
    PyObject *tuple, *result;
    Py_ssize_t i;

    if (kwnames != NULL) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (i = 0; i < nkw; i++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, i);
            if (key != rl_kw_context && key != rl_kw_context_seen) {
                int cmp = PyUnicode_Check(key)
                    ? PyUnicode_Compare(key, rl_kw_context) : -1;
                if (cmp != 0) {
                    if (!PyErr_Occurred()) {
                        PyErr_Format(PyExc_TypeError,
                            "%s() got an unexpected keyword argument '%S'",
                            name, key);
                    }
                    return NULL;
                }
                Py_INCREF(key);
                Py_XSETREF(rl_kw_context_seen, key);
            }
            context = args[nargs + i];
        }
    }
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError,
            "%s() missing 1 required positional argument: 'callback'", name);
        return NULL;
    }
    tuple = PyTuple_New(nargs - 1);   /* the shared empty tuple for 0 */
    if (tuple == NULL) {
        return NULL;
    }
    for (i = 1; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(tuple, i - 1, args[i]);
    }
    result = rl_soon_impls[which](self, args[0], tuple, context);
    Py_DECREF(tuple);
    return result;
}

static PyObject *
rl_call_soon_vc(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    return rl_soon_dispatch(0, "call_soon", self, args, nargs, kwnames);
}

static PyObject *
rl_call_soon_threadsafe_vc(PyObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    return rl_soon_dispatch(1, "call_soon_threadsafe", self, args, nargs,
                            kwnames);
}

static PyMethodDef rl_soon_methods[2] = {
    {"call_soon", (PyCFunction)(void (*)(void))rl_call_soon_vc,
     METH_FASTCALL | METH_KEYWORDS,
     "call_soon($self, callback, /, *args, context=None)\n--\n\n"
     "Arrange for callback(*args) to be called on the next iteration,\n"
     "in a copy of the current context (or the given one). Returns a Handle."},
    {"call_soon_threadsafe",
     (PyCFunction)(void (*)(void))rl_call_soon_threadsafe_vc,
     METH_FASTCALL | METH_KEYWORDS,
     "call_soon_threadsafe($self, callback, /, *args, context=None)\n--\n\n"
     "Like call_soon(), callable from any thread: wakes the loop if it\n"
     "is blocked waiting for I/O. Returns a Handle."},
};

/* Replace the Cython-generated methods of `type` with the entry points. */
static int
rl_install_soon_methods(PyTypeObject *type, rl_soon_impl soon,
                        rl_soon_impl threadsafe)
{
    int i;
    rl_soon_impls[0] = soon;
    rl_soon_impls[1] = threadsafe;
    rl_kw_context = PyUnicode_InternFromString("context");
    if (rl_kw_context == NULL) {
        return -1;
    }
    for (i = 0; i < 2; i++) {
        PyObject *descr = PyDescr_NewMethod(type, &rl_soon_methods[i]);
        if (descr == NULL) {
            return -1;
        }
        if (PyDict_SetItemString(type->tp_dict, rl_soon_methods[i].ml_name,
                                 descr) < 0) {
            Py_DECREF(descr);
            return -1;
        }
        Py_DECREF(descr);
    }
    PyType_Modified(type);
    return 0;
}

#endif
