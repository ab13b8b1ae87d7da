/* rl_call0(cb): cb() with no arguments, as cheaply as CPython allows.
 *
 * Vectorcall where the callable has it; otherwise its tp_call with the
 * empty tuple.  The recursion guard and the result check are those of
 * CPython's own call path.  The C Task's step wrapper has no vectorcall on
 * 3.11-3.13: Cython's generic call spent ~100 instructions per task step
 * reaching its tp_call. */
#ifndef RINGLOOP_CALL_H
#define RINGLOOP_CALL_H

#include <Python.h>

/* The empty tuple, held for the life of the process (a singleton on every
 * supported version): rl_call0's tp_call path passes it without a
 * PyTuple_New(0)/Py_DECREF pair per call. */
static PyObject *rl_empty_tuple = NULL;

static inline PyObject *rl_call0(PyObject *cb)
{
    PyTypeObject *tp = Py_TYPE(cb);
    ternaryfunc call;
    PyObject *res;
    if (PyType_HasFeature(tp, Py_TPFLAGS_HAVE_VECTORCALL)
            && *(vectorcallfunc *)((char *)cb + tp->tp_vectorcall_offset) != NULL) {
        res = (*(vectorcallfunc *)((char *)cb + tp->tp_vectorcall_offset))(
            cb, NULL, 0, NULL);
    } else {
        call = tp->tp_call;
        if (call == NULL || (rl_empty_tuple == NULL
                             && (rl_empty_tuple = PyTuple_New(0)) == NULL)) {
            return PyObject_CallNoArgs(cb);   /* raises "not callable" */
        }
        if (Py_EnterRecursiveCall(" while calling a Python object")) {
            return NULL;
        }
        res = call(cb, rl_empty_tuple, NULL);
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

/* rl_run_in_context(ctx, cb, args): cb(*args) inside ctx (a
 * contextvars.Context), the body of Handle.run() without the exception
 * bookkeeping of a Cython try block (two per callback, ~50 instructions).
 * Returns
 *    0  the callback returned; ctx has been exited;
 *   -1  entering ctx failed (already entered): the error is set;
 *   -2  the callback raised: the error is set and ctx is STILL ENTERED
 *       (the caller exits it once it has taken the exception);
 *   -3  exiting ctx failed: the error is set. */
static inline int rl_run_in_context(PyObject *ctx, PyObject *cb, PyObject *args)
{
    PyObject *res;
    if (PyContext_Enter(ctx) < 0) {
        return -1;
    }
    if (args == Py_None || PyTuple_GET_SIZE(args) == 0) {
        res = rl_call0(cb);
    } else {
        res = PyObject_Call(cb, args, NULL);
    }
    if (res == NULL) {
        return -2;
    }
    Py_DECREF(res);
    if (PyContext_Exit(ctx) < 0) {
        return -3;
    }
    return 0;
}

/* rl_run_target(ctx, fn, target): fn(target) inside ctx, for the loop's
 * I/O handles (fn a Cython function that calls target.on_readable() or
 * on_writable() and returns -1 with the error set when it raised).  The
 * return codes are those of rl_run_in_context. */
typedef int (*rl_target_fn)(PyObject *);

static inline int rl_run_target(PyObject *ctx, rl_target_fn fn, PyObject *target)
{
    if (PyContext_Enter(ctx) < 0) {
        return -1;
    }
    if (fn(target) < 0) {
        return -2;
    }
    if (PyContext_Exit(ctx) < 0) {
        return -3;
    }
    return 0;
}

/* For Cython: declared `except -1`, a call that reports the error already
 * set, so that an `except` clause can take it as an exception object. */
static inline int rl_pending_error(void)
{
    return -1;
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

/* rl_new_kw(type, args, kw): type(*args, **kw), as CPython's type_call
 * makes an instance (tp_new, then the instance type's tp_init when the
 * result is an instance of type), with a keyword dict the caller holds.
 * The loop makes its futures and tasks with `loop=self` and keeps that
 * {'loop': loop} dict while it runs: a call written `Future(loop=self)`
 * builds and frees a one-entry dict every time (~250 instructions).
 * Neither tp_new nor tp_init of asyncio's Future and Task keeps or changes
 * the dict (they parse it into their arguments). */
static inline PyObject *rl_new_kw(PyObject *type, PyObject *args, PyObject *kw)
{
    PyTypeObject *tp = (PyTypeObject *)type;
    PyObject *obj;
    if (!PyType_Check(type) || tp->tp_new == NULL) {
        return PyObject_Call(type, args, kw);
    }
    if (Py_EnterRecursiveCall(" while calling a Python object")) {
        return NULL;
    }
    obj = tp->tp_new(tp, args, kw);
    if (obj != NULL && PyObject_TypeCheck(obj, tp)) {
        tp = Py_TYPE(obj);
        if (tp->tp_init != NULL && tp->tp_init(obj, args, kw) < 0) {
            Py_CLEAR(obj);
        }
    }
    Py_LeaveRecursiveCall();
    return obj;
}

/* The type's method-cache version tag: CPython gives a type a new one (or
 * 0, none) whenever the type or a base is modified, so an unchanged nonzero
 * tag means an attribute looked up on it earlier is still what it was. */
static inline unsigned int rl_type_version(PyObject *o)
{
    return Py_TYPE(o)->tp_version_tag;
}

/* rl_method_is(obj, name, func): 1 when `obj.name(...)` would call the
 * plain function `func` found on obj's type (CPython's own method lookup,
 * as the LOAD_METHOD of `obj.name(...)` does: not shadowed on the instance,
 * no __getattribute__ of its own), 0 when it would call something else, -1
 * with the lookup's error set (the error `obj.name(...)` would raise).  The
 * lookup is exported by CPython 3.11-3.13 (declared in an internal header
 * on 3.13, hence the declaration here). */
PyAPI_FUNC(int) _PyObject_GetMethod(PyObject *obj, PyObject *name, PyObject **method);

static inline int rl_method_is(PyObject *obj, PyObject *name, PyObject *func)
{
    PyObject *meth = NULL;
    int unbound = _PyObject_GetMethod(obj, name, &meth);
    int same;
    if (meth == NULL) {
        return -1;
    }
    same = unbound && meth == func;
    Py_DECREF(meth);
    return same;
}

/* rl_type_attr(obj, name): what obj's type (and bases) define as `name`,
 * borrowed, or NULL: where a data descriptor (a property) is found, the
 * instance cannot shadow it. */
static inline PyObject *rl_type_attr(PyObject *obj, PyObject *name)
{
    return _PyType_Lookup(Py_TYPE(obj), name);
}

/* rl_tracing(): a trace or profile function is set in this thread
 * (sys.settrace / sys.setprofile: debuggers, profilers, coverage): code
 * that otherwise runs Python functions in C runs them as Python then, so
 * that they see it. */
/* rl_plain_getattr(obj): obj's type looks attributes up the generic way
 * (no __getattribute__ or __getattr__ of its own, on it or a base): a
 * lookup on it runs no Python code of the program's. */
static inline int rl_plain_getattr(PyObject *obj)
{
    return Py_TYPE(obj)->tp_getattro == PyObject_GenericGetAttr;
}

/* rl_code_is(func, code): the function object still runs that code object
 * (nobody assigned its __code__: IPython's autoreload, jurigged do). */
static inline int rl_code_is(PyObject *func, PyObject *code)
{
    return PyFunction_Check(func) && PyFunction_GET_CODE(func) == code;
}

static inline int rl_tracing(void)
{
    PyThreadState *ts = PyThreadState_Get();
    return ts->c_tracefunc != NULL || ts->c_profilefunc != NULL;
}

#endif
