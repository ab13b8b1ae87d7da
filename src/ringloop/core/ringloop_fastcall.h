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
/* The empty tuple (a process-wide singleton), held: *args of a call with the
 * callback alone, without a PyTuple_New(0) call per call_soon. */
static PyObject *rl_soon_no_args = NULL;

static inline PyObject *
rl_soon_dispatch(int which, const char *name, PyObject *self,
                 PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *context = Py_None;
    PyObject *callback = NULL;
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
                    if (PyErr_Occurred()) {
                        return NULL;
                    }
                    /* `callback` may be passed by keyword, as in asyncio's
                     * def call_soon(self, callback, *args, context=None). */
                    if (PyUnicode_Check(key)
                            && PyUnicode_CompareWithASCIIString(key, "callback") == 0) {
                        if (nargs >= 1 || callback != NULL) {
                            PyErr_Format(PyExc_TypeError,
                                "%s() got multiple values for argument 'callback'",
                                name);
                            return NULL;
                        }
                        callback = args[nargs + i];
                        continue;
                    }
                    PyErr_Format(PyExc_TypeError,
                        "%s() got an unexpected keyword argument '%S'",
                        name, key);
                    return NULL;
                }
                Py_INCREF(key);
                Py_XSETREF(rl_kw_context_seen, key);
            }
            context = args[nargs + i];
        }
    }
    if (callback != NULL) {
        /* No positional arguments: *args is empty (the shared tuple). */
        tuple = PyTuple_New(0);
        if (tuple == NULL) {
            return NULL;
        }
        result = rl_soon_impls[which](self, callback, tuple, context);
        Py_DECREF(tuple);
        return result;
    }
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError,
            "%s() missing 1 required positional argument: 'callback'", name);
        return NULL;
    }
    if (nargs == 1) {
        return rl_soon_impls[which](self, args[0], rl_soon_no_args, context);
    }
    tuple = PyTuple_New(nargs - 1);
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
     "call_soon($self, callback, *args, context=None)\n--\n\n"
     "Arrange for callback(*args) to be called on the next iteration,\n"
     "in a copy of the current context (or the given one). Returns a Handle."},
    {"call_soon_threadsafe",
     (PyCFunction)(void (*)(void))rl_call_soon_threadsafe_vc,
     METH_FASTCALL | METH_KEYWORDS,
     "call_soon_threadsafe($self, callback, *args, context=None)\n--\n\n"
     "Like call_soon(), callable from any thread: wakes the loop if it\n"
     "is blocked waiting for I/O. Returns a Handle."},
};

/* ------------------------------------------------------------------
 * Bound call_soon objects without an allocation per call.
 *
 * On 3.11 the C Task and Future look `loop.call_soon` up with
 * PyObject_GetAttr on every step and every done-callback: a generic
 * attribute lookup (type, then the instance __dict__, which asyncio's
 * AbstractEventLoop gives every loop) and a new bound-method object,
 * allocated, called once and freed.  On 3.12+ the lookup stays, the
 * allocation goes.
 *
 * The class attribute is therefore a data descriptor (rl_descr): instance
 * access returns a callable bound to the loop (rl_bound, vectorcall
 * straight into rl_soon_dispatch) which the loop keeps while it runs, so a
 * step costs one incref.  Class access returns the ordinary method
 * descriptor.  Assigning `loop.call_soon = x` (mock.patch.object does)
 * still works: the value goes into the instance __dict__ and the loop
 * notes that it must look there first; deleting it restores the method.
 * The loop drops its bound objects when run_forever() returns, so an idle
 * loop is in no reference cycle and is freed by reference counting as
 * before.  Everything else about the bound object (repr, __self__,
 * __name__, __text_signature__, __class__ ...) is the ordinary bound
 * method's, looked up on demand. */

/* Cython side: the instance lookup (override, cache) and the assignment. */
typedef PyObject *(*rl_soon_get_fn)(PyObject *loop, int which);
typedef int (*rl_soon_set_fn)(PyObject *loop, int which, PyObject *value);

static PyObject *rl_soon_method_descrs[2];   /* the ordinary descriptors */
static PyTypeObject *rl_loop_type = NULL;
static rl_soon_get_fn rl_soon_get = NULL;
static rl_soon_set_fn rl_soon_set = NULL;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *loop;
    int which;
    PyObject *weakreflist;   /* weakref.ref(loop.call_soon) works, as for methods */
} rl_bound;

static PyObject *
rl_bound_vc(PyObject *callable, PyObject *const *args, size_t nargsf,
            PyObject *kwnames)
{
    rl_bound *b = (rl_bound *)callable;
    if (b->loop == NULL) {   /* cleared by the GC: nothing to call */
        PyErr_SetString(PyExc_ReferenceError, "the loop of this call_soon is gone");
        return NULL;
    }
    return rl_soon_dispatch(b->which, rl_soon_methods[b->which].ml_name,
                            b->loop, args, PyVectorcall_NARGS(nargsf),
                            kwnames);
}

/* The ordinary bound method this object stands for. */
static PyObject *
rl_bound_real(rl_bound *b)
{
    PyObject *md = rl_soon_method_descrs[b->which];
    return Py_TYPE(md)->tp_descr_get(md, b->loop, (PyObject *)Py_TYPE(b->loop));
}

static int
rl_bound_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((rl_bound *)self)->loop);
    return 0;
}

static int
rl_bound_clear(PyObject *self)
{
    Py_CLEAR(((rl_bound *)self)->loop);
    return 0;
}

static void
rl_bound_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    if (((rl_bound *)self)->weakreflist != NULL) {
        PyObject_ClearWeakRefs(self);
    }
    Py_CLEAR(((rl_bound *)self)->loop);
    PyObject_GC_Del(self);
}

static PyObject *
rl_bound_getattro(PyObject *self, PyObject *name)
{
    PyObject *real, *result;
    if (((rl_bound *)self)->loop == NULL
            || (PyUnicode_Check(name)
                && (PyUnicode_CompareWithASCIIString(name, "__deepcopy__") == 0
                    || PyUnicode_CompareWithASCIIString(name, "__copy__") == 0))) {
        /* Our own __copy__/__deepcopy__ (copy's fast path for builtin
         * methods is keyed by the exact type, which this is not). */
        return PyObject_GenericGetAttr(self, name);
    }
    real = rl_bound_real((rl_bound *)self);
    if (real == NULL) {
        return NULL;
    }
    result = PyObject_GetAttr(real, name);
    Py_DECREF(real);
    return result;
}

static PyObject *
rl_bound_repr(PyObject *self)
{
    PyObject *real, *result;
    if (((rl_bound *)self)->loop == NULL) {
        return PyUnicode_FromString("<cleared bound method>");
    }
    real = rl_bound_real((rl_bound *)self);
    if (real == NULL) {
        return NULL;
    }
    result = PyObject_Repr(real);
    Py_DECREF(real);
    return result;
}

static Py_hash_t
rl_bound_hash(PyObject *self)
{
    PyObject *real;
    Py_hash_t h;
    if (((rl_bound *)self)->loop == NULL) {
        return PyBaseObject_Type.tp_hash(self);
    }
    real = rl_bound_real((rl_bound *)self);
    if (real == NULL) {
        return -1;
    }
    h = PyObject_Hash(real);
    Py_DECREF(real);
    return h;
}

static PyTypeObject rl_bound_type;

/* Equal to itself, to another bound object of the same loop and method, and
 * to the ordinary bound method it stands for (as bound methods compare). */
static PyObject *
rl_bound_richcompare(PyObject *self, PyObject *other, int op)
{
    PyObject *real, *result;
    rl_bound *a = (rl_bound *)self;
    if (op != Py_EQ && op != Py_NE) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (Py_TYPE(other) == &rl_bound_type) {
        rl_bound *b = (rl_bound *)other;
        int eq = a->loop == b->loop && a->which == b->which
                 && (a->loop != NULL || self == other);
        return PyBool_FromLong(op == Py_EQ ? eq : !eq);
    }
    if (a->loop == NULL || !PyCFunction_Check(other)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    real = rl_bound_real(a);
    if (real == NULL) {
        return NULL;
    }
    result = PyObject_RichCompare(real, other, op);
    Py_DECREF(real);
    return result;
}

/* copy.copy / copy.deepcopy: the object itself, as for a builtin bound
 * method (the loop is not copied). */
static PyObject *
rl_bound_copy(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    return self;
}

static PyMethodDef rl_bound_methods[] = {
    {"__copy__", rl_bound_copy, METH_NOARGS, NULL},
    {"__deepcopy__", rl_bound_copy, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject rl_bound_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ringloop.core.loop.bound_call_soon",
    .tp_basicsize = sizeof(rl_bound),
    .tp_dealloc = rl_bound_dealloc,
    .tp_vectorcall_offset = offsetof(rl_bound, vectorcall),
    .tp_repr = rl_bound_repr,
    .tp_hash = rl_bound_hash,
    .tp_call = PyVectorcall_Call,
    .tp_getattro = rl_bound_getattro,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
                | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_traverse = rl_bound_traverse,
    .tp_clear = rl_bound_clear,
    .tp_richcompare = rl_bound_richcompare,
    .tp_weaklistoffset = offsetof(rl_bound, weakreflist),
    .tp_methods = rl_bound_methods,
};

/* A new bound object for loop.call_soon (which 0) or
 * loop.call_soon_threadsafe (1). */
static PyObject *
rl_bound_new(PyObject *loop, int which)
{
    rl_bound *b = PyObject_GC_New(rl_bound, &rl_bound_type);
    if (b == NULL) {
        return NULL;
    }
    b->vectorcall = rl_bound_vc;
    Py_INCREF(loop);
    b->loop = loop;
    b->which = which;
    b->weakreflist = NULL;
    PyObject_GC_Track((PyObject *)b);
    return (PyObject *)b;
}

typedef struct {
    PyObject_HEAD
    int which;
} rl_descr;

/* The bound object of the loop that asked last (normally the one running
 * in this process), so that the common lookup is a pointer comparison.
 * Filled by the loop while it runs, dropped when it stops or when the
 * method is assigned on the instance.  The strong reference to the bound
 * object keeps its loop alive, so the key cannot be reused while cached. */
static PyObject *rl_soon_cache_loop[2];
static PyObject *rl_soon_cache_bound[2];

static void
rl_soon_cache_put(PyObject *loop, int which, PyObject *bound)
{
    PyObject *old = rl_soon_cache_bound[which];
    Py_INCREF(bound);
    rl_soon_cache_bound[which] = bound;
    rl_soon_cache_loop[which] = loop;
    Py_XDECREF(old);
}

static void
rl_soon_cache_drop(PyObject *loop)
{
    int i;
    for (i = 0; i < 2; i++) {
        if (rl_soon_cache_loop[i] == loop) {
            PyObject *old = rl_soon_cache_bound[i];
            rl_soon_cache_loop[i] = NULL;
            rl_soon_cache_bound[i] = NULL;
            Py_XDECREF(old);
        }
    }
}

static PyObject *
rl_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    int which = ((rl_descr *)self)->which;
    if (obj == rl_soon_cache_loop[which] && obj != NULL) {
        Py_INCREF(rl_soon_cache_bound[which]);
        return rl_soon_cache_bound[which];
    }
    if (obj == NULL || !PyObject_TypeCheck(obj, rl_loop_type)) {
        /* Class access (and any misuse) as the ordinary descriptor. */
        PyObject *md = rl_soon_method_descrs[which];
        return Py_TYPE(md)->tp_descr_get(md, obj, type);
    }
    return rl_soon_get(obj, which);
}

static int
rl_descr_set(PyObject *self, PyObject *obj, PyObject *value)
{
    if (!PyObject_TypeCheck(obj, rl_loop_type)) {
        PyErr_Format(PyExc_TypeError,
                     "descriptor '%s' for '%s' objects doesn't apply to a '%s' object",
                     rl_soon_methods[((rl_descr *)self)->which].ml_name,
                     rl_loop_type->tp_name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    return rl_soon_set(obj, ((rl_descr *)self)->which, value);
}

static PyObject *
rl_descr_getattro(PyObject *self, PyObject *name)
{
    /* __doc__, __name__, __qualname__, __objclass__, __text_signature__:
     * the ordinary method descriptor's. */
    PyObject *result = PyObject_GenericGetAttr(self, name);
    if (result == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        result = PyObject_GetAttr(
            rl_soon_method_descrs[((rl_descr *)self)->which], name);
    }
    return result;
}

static PyObject *
rl_descr_repr(PyObject *self)
{
    return PyObject_Repr(rl_soon_method_descrs[((rl_descr *)self)->which]);
}

static PyTypeObject rl_descr_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ringloop.core.loop.call_soon_descriptor",
    .tp_basicsize = sizeof(rl_descr),
    .tp_dealloc = (destructor)PyObject_Del,
    .tp_repr = rl_descr_repr,
    .tp_getattro = rl_descr_getattro,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_descr_get = rl_descr_get,
    .tp_descr_set = rl_descr_set,
};

/* Replace the Cython-generated methods of `type` with the entry points,
 * behind the data descriptors above. */
static int
rl_install_soon_methods(PyTypeObject *type, rl_soon_impl soon,
                        rl_soon_impl threadsafe, rl_soon_get_fn get,
                        rl_soon_set_fn set)
{
    int i;
    rl_soon_impls[0] = soon;
    rl_soon_impls[1] = threadsafe;
    rl_soon_get = get;
    rl_soon_set = set;
    rl_loop_type = type;
    rl_kw_context = PyUnicode_InternFromString("context");
    if (rl_kw_context == NULL) {
        return -1;
    }
    rl_soon_no_args = PyTuple_New(0);
    if (rl_soon_no_args == NULL) {
        return -1;
    }
    if (PyType_Ready(&rl_bound_type) < 0 || PyType_Ready(&rl_descr_type) < 0) {
        return -1;
    }
    for (i = 0; i < 2; i++) {
        rl_descr *d;
        PyObject *md = PyDescr_NewMethod(type, &rl_soon_methods[i]);
        if (md == NULL) {
            return -1;
        }
        rl_soon_method_descrs[i] = md;   /* kept for the process */
        d = PyObject_New(rl_descr, &rl_descr_type);
        if (d == NULL) {
            return -1;
        }
        d->which = i;
        if (PyDict_SetItemString(type->tp_dict, rl_soon_methods[i].ml_name,
                                 (PyObject *)d) < 0) {
            Py_DECREF(d);
            return -1;
        }
        Py_DECREF(d);
    }
    PyType_Modified(type);
    return 0;
}

#endif
