/* rl_call0(cb): cb() with no arguments, as cheaply as CPython allows.
 *
 * Vectorcall where the callable has it; otherwise its tp_call with the
 * shared empty tuple.  The recursion guard and the result check are those of
 * CPython's own call path.  The C Task's step wrapper has no vectorcall on
 * 3.11-3.13: Cython's generic call spent ~100 instructions per task step
 * reaching its tp_call. */
#ifndef RINGLOOP_CALL_H
#define RINGLOOP_CALL_H

#include <Python.h>

static inline PyObject *rl_call0(PyObject *cb)
{
    vectorcallfunc vc = PyVectorcall_Function(cb);
    ternaryfunc call;
    PyObject *res;
    if (vc != NULL) {
        res = vc(cb, NULL, 0, NULL);
    } else {
        call = Py_TYPE(cb)->tp_call;
        if (call == NULL) {
            return PyObject_CallNoArgs(cb);   /* raises "not callable" */
        }
        if (Py_EnterRecursiveCall(" while calling a Python object")) {
            return NULL;
        }
        /* PyTuple_New(0) is the shared empty tuple: no allocation. */
        PyObject *empty = PyTuple_New(0);
        if (empty == NULL) {
            Py_LeaveRecursiveCall();
            return NULL;
        }
        res = call(cb, empty, NULL);
        Py_DECREF(empty);
        Py_LeaveRecursiveCall();
    }
    if (res == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_SystemError,
                         "%R returned NULL without setting an exception", cb);
        }
    } else if (PyErr_Occurred()) {
        Py_DECREF(res);
        res = NULL;
        PyErr_Format(PyExc_SystemError,
                     "%R returned a result with an exception set", cb);
    }
    return res;
}

/* rl_call_method1(obj, name, arg): obj.name(arg), the attribute looked up
 * on every call (as asyncio's transports do: a protocol may rebind its
 * data_received on the instance or its class), without creating a bound
 * method.  A missing attribute raises AttributeError at the call, as in
 * asyncio. */
static inline PyObject *rl_call_method1(PyObject *obj, PyObject *name, PyObject *arg)
{
    PyObject *stack[3] = {NULL, obj, arg};
    return PyObject_VectorcallMethod(name, stack + 1,
                                     2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

#endif
