/* Compiled fast path of rca.ingest.otlp_decode: gauges and sums straight from the OTLP wire.
 *
 * The caller has already parsed the record with the protobuf runtime (so the bytes are a
 * valid ExportMetricsServiceRequest); this walks the same bytes again and appends the samples
 * of gauges and sums to the caller's lists, as the pure Python decoder does, without building
 * a Python object per protobuf field. Anything outside that common path goes back to Python,
 * so both paths give the same samples by construction:
 *
 * - a whole record, before anything is appended, when its outer layers hold something
 *   unexpected (a group, a known field with another wire type);
 * - one metric, in order, when it is a histogram, an exponential histogram or a summary, or
 *   when anything in it is unusual: no name, a point without time or with one at or past 2**63,
 *   a point flagged "no recorded value", a NaN or infinite gauge or sum value, a data field that
 *   appears twice (protobuf merges those), an array or map attribute;
 * - one counter point whose rate cannot be computed exactly in doubles (|value| > 2**53).
 *
 * The service of a resource is asked of Python once per resource (it caches by bytes).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Buf;

/* Wire types (protobuf encoding). */
enum { VARINT = 0, I64 = 1, LEN = 2, I32 = 5 };

/* Result of a wire read: OK, or UNUSUAL (hand the enclosing unit back to Python). */
enum { OK = 0, UNUSUAL = 1 };

static int read_varint(Buf *b, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return UNUSUAL;
        uint8_t byte = *b->p++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return OK;
        }
    }
    return UNUSUAL;
}

static int read_tag(Buf *b, uint32_t *field, int *wire_type) {
    uint64_t tag;
    if (read_varint(b, &tag) != OK || tag >> 32) return UNUSUAL;
    *field = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    return *field ? OK : UNUSUAL;
}

static int read_fixed64(Buf *b, uint64_t *out) {
    if (b->end - b->p < 8) return UNUSUAL;
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = (value << 8) | b->p[i];
    b->p += 8;
    *out = value;
    return OK;
}

static int read_len(Buf *b, Buf *sub) {
    uint64_t size;
    if (read_varint(b, &size) != OK || size > (uint64_t)(b->end - b->p)) return UNUSUAL;
    sub->p = b->p;
    sub->end = b->p + size;
    b->p += size;
    return OK;
}

/* Skip a field's payload; groups (wire types 3, 4) are unusual. */
static int skip(Buf *b, int wire_type) {
    uint64_t ignored;
    Buf sub;
    switch (wire_type) {
        case VARINT: return read_varint(b, &ignored);
        case I64: return read_fixed64(b, &ignored);
        case LEN: return read_len(b, &sub);
        case I32:
            if (b->end - b->p < 4) return UNUSUAL;
            b->p += 4;
            return OK;
        default: return UNUSUAL;
    }
}

static double as_double(uint64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* ---- metric layout, found by a scan before anything is appended ---- */

enum { GAUGE = 5, SUM = 7, HISTOGRAM = 9, EXPONENTIAL_HISTOGRAM = 10, SUMMARY = 11 };
#define CUMULATIVE 2
#define NO_RECORDED_VALUE 1u
#define EXACT_INT_LIMIT 9007199254740992LL /* 2**53: ints up to it are exact doubles */

typedef struct {
    Buf name;
    int kind;
    Buf data; /* the Gauge or Sum message */
    int monotonic;
    int cumulative;
} MetricLayout;

/* The metric's name, data kind and data; UNUSUAL unless it is a gauge, sum or explicit
 * histogram with a name and a single data field. */
static int scan_metric(Buf metric, MetricLayout *out) {
    int name_seen = 0, kind = 0, kind_count = 0;
    uint32_t field;
    int wire_type;
    memset(out, 0, sizeof *out);
    while (metric.p < metric.end) {
        if (read_tag(&metric, &field, &wire_type) != OK) return UNUSUAL;
        if (field == 1 || field == GAUGE || field == SUM || field == HISTOGRAM ||
            field == EXPONENTIAL_HISTOGRAM || field == SUMMARY) {
            Buf sub;
            if (wire_type != LEN || read_len(&metric, &sub) != OK) return UNUSUAL;
            if (field == 1) {
                out->name = sub;
                name_seen = 1;
            } else {
                kind_count = field == (uint32_t)kind ? kind_count + 1 : 1;
                kind = (int)field;
                out->data = sub;
            }
        } else if (skip(&metric, wire_type) != OK) {
            return UNUSUAL;
        }
    }
    if (!name_seen || out->name.p == out->name.end || kind_count != 1) return UNUSUAL;
    if (kind != GAUGE && kind != SUM && kind != HISTOGRAM) return UNUSUAL;
    out->kind = kind;
    if (kind == SUM || kind == HISTOGRAM) {
        Buf data = out->data;
        while (data.p < data.end) {
            if (read_tag(&data, &field, &wire_type) != OK) return UNUSUAL;
            if (field == 2 || (field == 3 && kind == SUM)) {
                uint64_t value;
                if (wire_type != VARINT || read_varint(&data, &value) != OK) return UNUSUAL;
                if (field == 2)
                    out->cumulative = (int32_t)value == CUMULATIVE;
                else if (kind == SUM)
                    out->monotonic = value != 0;
            } else if (field == 1 ? wire_type != LEN || skip(&data, LEN) != OK
                                  : skip(&data, wire_type) != OK) {
                return UNUSUAL;
            }
        }
    }
    return OK;
}

/* ---- data points ---- */

typedef struct {
    uint64_t start_ns, time_ns;
    int value_field; /* 0 unset, 4 as_double, 6 as_int */
    uint64_t value_bits;
    Buf attributes[64];
    int n_attributes;
} Point;

/* One AnyValue: the wire type and payload of its single scalar field (field 0 when empty). */
typedef struct {
    uint32_t field;
    uint64_t number;
    Buf bytes;
} Scalar;

static int scan_any_value(Buf value, Scalar *out) {
    uint32_t field;
    int wire_type, seen = 0;
    out->field = 0;
    while (value.p < value.end) {
        if (read_tag(&value, &field, &wire_type) != OK) return UNUSUAL;
        if (field >= 1 && field <= 7) {
            /* arrays, maps and repeated oneof fields (merged by protobuf) go to Python */
            if (seen++ || field == 5 || field == 6) return UNUSUAL;
            int expected = field == 1 || field == 7 ? LEN : field == 4 ? I64 : VARINT;
            if (wire_type != expected) return UNUSUAL;
            out->field = field;
            if (expected == LEN) {
                if (read_len(&value, &out->bytes) != OK) return UNUSUAL;
            } else if ((expected == I64 ? read_fixed64(&value, &out->number)
                                        : read_varint(&value, &out->number)) != OK) {
                return UNUSUAL;
            }
        } else if (skip(&value, wire_type) != OK) {
            return UNUSUAL;
        }
    }
    return OK;
}

/* A KeyValue's key and value; UNUSUAL when the value is not a single scalar. */
static int scan_key_value(Buf kv, Buf *key, Scalar *value) {
    uint32_t field;
    int wire_type, value_seen = 0;
    key->p = key->end = kv.p;
    value->field = 0;
    while (kv.p < kv.end) {
        if (read_tag(&kv, &field, &wire_type) != OK) return UNUSUAL;
        if (field == 1 || field == 2) {
            Buf sub;
            if (wire_type != LEN || read_len(&kv, &sub) != OK) return UNUSUAL;
            if (field == 1) {
                *key = sub;
            } else {
                if (value_seen++ || scan_any_value(sub, value) != OK) return UNUSUAL;
            }
        } else if (skip(&kv, wire_type) != OK) {
            return UNUSUAL;
        }
    }
    return OK;
}

/* A field every data point has (attributes, flags) into ``out`` and ``flags``; any other
 * field is skipped. */
static int scan_point_field(Buf *point, uint32_t field, int wire_type, uint32_t attributes_field,
                            uint32_t flags_field, Point *out, uint64_t *flags) {
    if (field == attributes_field) {
        if (wire_type != LEN || out->n_attributes == 64) return UNUSUAL;
        return read_len(point, &out->attributes[out->n_attributes++]);
    }
    if (field == flags_field) return wire_type == VARINT ? read_varint(point, flags) : UNUSUAL;
    return skip(point, wire_type);
}

/* UNUSUAL for a point Python must judge: no time or one past int64 nanoseconds, "no recorded
 * value", unusual attributes. */
static int check_point(const Point *point, uint64_t time_ns, uint64_t flags) {
    if (!time_ns || (time_ns >> 63) || (flags & NO_RECORDED_VALUE)) return UNUSUAL;
    for (int i = 0; i < point->n_attributes; i++) {
        Buf key;
        Scalar value;
        if (scan_key_value(point->attributes[i], &key, &value) != OK) return UNUSUAL;
    }
    return OK;
}

/* A NumberDataPoint's fields; UNUSUAL for a point Python must judge (see check_point, and a
 * NaN or infinite double, wrong wire types, too many attributes). */
static int scan_point(Buf point, Point *out) {
    uint32_t field;
    int wire_type;
    uint64_t flags = 0;
    out->start_ns = out->time_ns = 0;
    out->value_field = 0;
    out->value_bits = 0;
    out->n_attributes = 0;
    while (point.p < point.end) {
        if (read_tag(&point, &field, &wire_type) != OK) return UNUSUAL;
        if (field == 2 || field == 3 || field == 4 || field == 6) {
            uint64_t value;
            if (wire_type != I64 || read_fixed64(&point, &value) != OK) return UNUSUAL;
            if (field == 2) out->start_ns = value;
            else if (field == 3) out->time_ns = value;
            else {
                out->value_field = (int)field;
                out->value_bits = value;
            }
        } else if (scan_point_field(&point, field, wire_type, 7, 8, out, &flags) != OK) {
            return UNUSUAL;
        }
    }
    if (out->value_field == 4 && !isfinite(as_double(out->value_bits))) return UNUSUAL;
    return check_point(out, out->time_ns, flags);
}

/* Every point of the data message; OK when all are usual. */
static int scan_points(Buf data) {
    uint32_t field;
    int wire_type;
    Point point;
    while (data.p < data.end) {
        if (read_tag(&data, &field, &wire_type) != OK) return UNUSUAL;
        if (field == 1) {
            Buf sub;
            if (wire_type != LEN || read_len(&data, &sub) != OK || scan_point(sub, &point) != OK)
                return UNUSUAL;
        } else if (skip(&data, wire_type) != OK) {
            return UNUSUAL;
        }
    }
    return OK;
}

/* The data message's points are all length-delimited (histograms: their points are judged
 * one by one when decoded). */
static int scan_lengths(Buf data) {
    uint32_t field;
    int wire_type;
    while (data.p < data.end) {
        if (read_tag(&data, &field, &wire_type) != OK) return UNUSUAL;
        if (field == 1 && wire_type != LEN) return UNUSUAL;
        if (skip(&data, wire_type) != OK) return UNUSUAL;
    }
    return OK;
}

/* ---- Python objects ---- */

static PyObject *text(Buf b) {
    return PyUnicode_DecodeUTF8((const char *)b.p, b.end - b.p, NULL);
}

/* The attribute value as otlp_decode.any_value_text writes it. */
static PyObject *scalar_text(const Scalar *value) {
    static const char hex[] = "0123456789abcdef";
    switch (value->field) {
        case 1: return text(value->bytes);
        case 2: return PyUnicode_FromString(value->number ? "true" : "false");
        case 3: {
            PyObject *number = PyLong_FromLongLong((long long)value->number);
            if (!number) return NULL;
            PyObject *s = PyObject_Str(number);
            Py_DECREF(number);
            return s;
        }
        case 4: {
            PyObject *number = PyFloat_FromDouble(as_double(value->number));
            if (!number) return NULL;
            PyObject *s = PyObject_Str(number);
            Py_DECREF(number);
            return s;
        }
        case 7: {
            Py_ssize_t n = value->bytes.end - value->bytes.p;
            PyObject *s = PyUnicode_New(2 * n, 127);
            if (!s) return NULL;
            Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
            for (Py_ssize_t i = 0; i < n; i++) {
                out[2 * i] = (Py_UCS1)hex[value->bytes.p[i] >> 4];
                out[2 * i + 1] = (Py_UCS1)hex[value->bytes.p[i] & 15];
            }
            return s;
        }
        default: return PyUnicode_FromString("");
    }
}

/* The point's attributes as a tuple of (key, text) pairs, sorted when more than one. */
static PyObject *attributes(const Point *point) {
    if (point->n_attributes == 0) return PyTuple_New(0);
    PyObject *pairs = PyList_New(point->n_attributes);
    if (!pairs) return NULL;
    for (int i = 0; i < point->n_attributes; i++) {
        Buf key;
        Scalar value;
        scan_key_value(point->attributes[i], &key, &value); /* checked by scan_point */
        PyObject *k = text(key), *v = k ? scalar_text(&value) : NULL;
        PyObject *pair = v ? PyTuple_Pack(2, k, v) : NULL;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (!pair) {
            Py_DECREF(pairs);
            return NULL;
        }
        PyList_SET_ITEM(pairs, i, pair);
    }
    if (point->n_attributes > 1 && PyList_Sort(pairs) < 0) {
        Py_DECREF(pairs);
        return NULL;
    }
    PyObject *tuple = PyList_AsTuple(pairs);
    Py_DECREF(pairs);
    return tuple;
}

/* The point's value as Python reads ``as_double or as_int``. */
static PyObject *point_value(const Point *point) {
    if (point->value_field == 4 && as_double(point->value_bits) != 0.0)
        return PyFloat_FromDouble(as_double(point->value_bits));
    if (point->value_field == 6) return PyLong_FromLongLong((long long)point->value_bits);
    return PyLong_FromLong(0);
}

typedef struct {
    PyObject *counters, *distributions; /* DecodeState's */
    PyObject *keys, *times, *values;    /* Samples' columns */
    PyObject *counter_rate;    /* rca.ingest.counters.counter_rate, for values beyond 2**53 */
    PyObject *histogram_point; /* decodes one unusual histogram point in Python */
    Py_ssize_t points;
} Context;

/* Interned stat names, made at import. */
static PyObject *RATE, *MEAN, *QUANTILE_STATS[3];

static int append3(Context *ctx, PyObject *key, PyObject *time, PyObject *value) {
    if (PyList_Append(ctx->keys, key) < 0 || PyList_Append(ctx->times, time) < 0 ||
        PyList_Append(ctx->values, value) < 0)
        return -1;
    return 0;
}

/* A number as an exact double: 1 when it is one (a float, or an int within 2**53). */
static int exact_double(PyObject *number, double *out, int *is_int) {
    if (PyFloat_CheckExact(number)) {
        *out = PyFloat_AS_DOUBLE(number);
        *is_int = 0;
        return 1;
    }
    if (!PyLong_CheckExact(number)) return 0;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(number, &overflow);
    if (overflow || v > EXACT_INT_LIMIT || v < -EXACT_INT_LIMIT) return 0;
    *out = (double)v;
    *is_int = 1;
    return 1;
}

/* rca.ingest.counters.counter_rate; NULL with an exception, or a float object (maybe NaN). */
static PyObject *counter_rate(Context *ctx, const Point *point, PyObject *value,
                              PyObject *previous) {
    const double nanos = 1e9;
    double v, pv;
    int v_int, pv_int, overflow = 0;
    uint64_t p_start = 0, p_time = 0;
    int fast = exact_double(value, &v, &v_int);
    if (fast && previous) {
        fast = PyTuple_CheckExact(previous) && PyTuple_GET_SIZE(previous) == 3 &&
               PyLong_CheckExact(PyTuple_GET_ITEM(previous, 0)) &&
               PyLong_CheckExact(PyTuple_GET_ITEM(previous, 1)) &&
               exact_double(PyTuple_GET_ITEM(previous, 2), &pv, &pv_int);
        if (fast) {
            p_start = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(previous, 0));
            p_time = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(previous, 1));
            overflow = PyErr_Occurred() != NULL;
            PyErr_Clear();
            fast = !overflow;
        }
    }
    if (!fast) {
        PyObject *start = PyLong_FromUnsignedLongLong(point->start_ns);
        PyObject *time = PyLong_FromUnsignedLongLong(point->time_ns);
        PyObject *rate = start && time ? PyObject_CallFunctionObjArgs(
                                             ctx->counter_rate, start, time, value,
                                             previous ? previous : Py_None, NULL)
                                       : NULL;
        Py_XDECREF(start);
        Py_XDECREF(time);
        return rate;
    }
    double rate;
    uint64_t start = point->start_ns, time = point->time_ns;
    if (previous) {
        if (time <= p_time) return PyFloat_FromDouble(Py_NAN);
        int restarted = (start > 0 && start != p_start) || v < pv;
        if (!restarted) {
            /* ints: Python subtracts exactly, then rounds; both are within 2**53 here */
            double diff = v_int && pv_int ? (double)((long long)v - (long long)pv) : v - pv;
            rate = diff * nanos / (double)(time - p_time);
        } else if (p_time < start && start < time) {
            rate = v * nanos / (double)(time - start);
        } else {
            rate = v * nanos / (double)(time - p_time);
        }
    } else if (0 < start && start < time) {
        rate = v * nanos / (double)(time - start);
    } else {
        rate = Py_NAN;
    }
    return PyFloat_FromDouble(rate);
}

/* Append the samples of a usual gauge or sum; -1 with an error. */
static int emit_metric(Context *ctx, PyObject *service, const MetricLayout *metric) {
    PyObject *name = text(metric->name);
    if (!name) return -1;
    int counter = metric->kind == SUM && metric->monotonic;
    PyObject *stat = counter ? RATE : Py_None;
    Buf data = metric->data;
    uint32_t field;
    int wire_type;
    Point point;
    while (data.p < data.end) {
        read_tag(&data, &field, &wire_type); /* checked by scan_points */
        if (field != 1) {
            skip(&data, wire_type);
            continue;
        }
        Buf sub;
        read_len(&data, &sub);
        scan_point(sub, &point);
        PyObject *attrs = attributes(&point);
        PyObject *key = attrs ? PyTuple_Pack(4, service, name, stat, attrs) : NULL;
        PyObject *time = key ? PyLong_FromUnsignedLongLong(point.time_ns) : NULL;
        PyObject *value = time ? point_value(&point) : NULL;
        Py_XDECREF(attrs);
        int failed = value == NULL;
        if (!failed && !counter) {
            failed = append3(ctx, key, time, value) < 0;
        } else if (!failed && metric->cumulative) {
            PyObject *previous = PyDict_GetItemWithError(ctx->counters, key); /* borrowed */
            Py_XINCREF(previous);
            PyObject *rate = PyErr_Occurred() ? NULL : counter_rate(ctx, &point, value, previous);
            double r = rate ? PyFloat_AsDouble(rate) : -1.0;
            failed = rate == NULL || (r == -1.0 && PyErr_Occurred());
            if (!failed && r == r) failed = append3(ctx, key, time, rate) < 0;
            Py_XDECREF(rate);
            int newer = 1;
            if (!failed && previous) {
                PyObject *p_time = PyTuple_GET_ITEM(previous, 1);
                newer = PyObject_RichCompareBool(time, p_time, Py_GT);
                failed = newer < 0;
            }
            if (!failed && newer) {
                PyObject *start = PyLong_FromUnsignedLongLong(point.start_ns);
                PyObject *state = start ? PyTuple_Pack(3, start, time, value) : NULL;
                failed = !state || PyDict_SetItem(ctx->counters, key, state) < 0;
                Py_XDECREF(start);
                Py_XDECREF(state);
            }
            Py_XDECREF(previous);
        } else if (!failed) { /* a delta counter: the count over [start, time] */
            double v = PyFloat_Check(value) ? PyFloat_AS_DOUBLE(value) : PyLong_AsDouble(value);
            failed = v == -1.0 && PyErr_Occurred();
            double rate = Py_NAN;
            if (!failed && 0 < point.start_ns && point.start_ns < point.time_ns)
                rate = v * 1e9 / (double)(point.time_ns - point.start_ns);
            if (!failed && rate == rate) {
                PyObject *sample = PyFloat_FromDouble(rate);
                failed = !sample || append3(ctx, key, time, sample) < 0;
                Py_XDECREF(sample);
            }
        }
        Py_XDECREF(key);
        Py_XDECREF(time);
        Py_XDECREF(value);
        if (failed) {
            Py_DECREF(name);
            return -1;
        }
        ctx->points++;
    }
    Py_DECREF(name);
    return 0;
}

/* ---- explicit histograms ---- */

#define MAX_BUCKETS 256
static const double QUANTILES[3] = {0.5, 0.9, 0.99};

typedef struct {
    uint64_t start_ns, time_ns;
    double sum, min, max;
    int has_min, has_max;
    uint64_t bound_bits[MAX_BUCKETS]; /* as on the wire */
    double bounds[MAX_BUCKETS];
    uint64_t counts[MAX_BUCKETS + 1];
    int n_bounds, n_counts;
    Point attrs; /* only its attributes are used */
} HistogramPoint;

/* Append a packed (LEN) or unpacked (I64) repeated 8-byte field to ``out``. */
static int read_repeated64(Buf *b, int wire_type, uint64_t *out, int *n, int cap) {
    if (wire_type == I64) {
        if (*n == cap) return UNUSUAL;
        return read_fixed64(b, &out[(*n)++]);
    }
    Buf packed;
    if (wire_type != LEN || read_len(b, &packed) != OK || (packed.end - packed.p) % 8) return UNUSUAL;
    while (packed.p < packed.end) {
        if (*n == cap) return UNUSUAL;
        read_fixed64(&packed, &out[(*n)++]);
    }
    return OK;
}

/* A HistogramDataPoint this file decodes: a time, no "no recorded value" flag, bounds without
 * NaN and one more count than bounds, counts summing below 2**53 (so double arithmetic is
 * exact where Python's is), usual attributes. Anything else: UNUSUAL, Python decodes it. */
static int scan_histogram_point(Buf point, HistogramPoint *out) {
    uint32_t field;
    int wire_type;
    uint64_t flags = 0, bits;
    out->start_ns = out->time_ns = 0;
    out->sum = 0.0;
    out->has_min = out->has_max = 0;
    out->n_bounds = out->n_counts = 0;
    out->attrs.n_attributes = 0;
    while (point.p < point.end) {
        if (read_tag(&point, &field, &wire_type) != OK) return UNUSUAL;
        switch (field) {
            case 2: case 3: case 4: case 5: case 11: case 12:
                if (wire_type != I64 || read_fixed64(&point, &bits) != OK) return UNUSUAL;
                if (field == 2) out->start_ns = bits;
                else if (field == 3) out->time_ns = bits;
                else if (field == 5) out->sum = as_double(bits);
                else if (field == 11) { out->min = as_double(bits); out->has_min = 1; }
                else if (field == 12) { out->max = as_double(bits); out->has_max = 1; }
                break;
            case 6:
                if (read_repeated64(&point, wire_type, out->counts, &out->n_counts,
                                    MAX_BUCKETS + 1) != OK)
                    return UNUSUAL;
                break;
            case 7:
                if (read_repeated64(&point, wire_type, out->bound_bits, &out->n_bounds,
                                    MAX_BUCKETS) != OK)
                    return UNUSUAL;
                break;
            default:
                if (scan_point_field(&point, field, wire_type, 9, 10, &out->attrs, &flags) != OK)
                    return UNUSUAL;
        }
    }
    if (out->n_bounds == 0 || out->n_counts != out->n_bounds + 1) return UNUSUAL;
    uint64_t total = 0;
    for (int i = 0; i < out->n_counts; i++) {
        if (out->counts[i] >= (uint64_t)EXACT_INT_LIMIT) return UNUSUAL;
        total += out->counts[i];
        if (total >= (uint64_t)EXACT_INT_LIMIT) return UNUSUAL;
    }
    for (int i = 0; i < out->n_bounds; i++) {
        out->bounds[i] = as_double(out->bound_bits[i]);
        if (out->bounds[i] != out->bounds[i]) return UNUSUAL;
    }
    return check_point(&out->attrs, out->time_ns, flags);
}

/* The series' previous cumulative point, when it has the shape this file can difference
 * against: (start, time, layout, counts, sum) with ints, floats and lists of them. */
typedef struct {
    uint64_t start_ns, time_ns;
    int same_layout;
    PyObject *counts; /* borrowed */
    double total;
} Previous;

static int read_previous(PyObject *previous, const HistogramPoint *point, Previous *out) {
    if (!PyTuple_CheckExact(previous) || PyTuple_GET_SIZE(previous) != 5) return UNUSUAL;
    PyObject *start = PyTuple_GET_ITEM(previous, 0), *time = PyTuple_GET_ITEM(previous, 1);
    PyObject *total = PyTuple_GET_ITEM(previous, 4);
    if (!PyLong_CheckExact(start) || !PyLong_CheckExact(time) || !PyFloat_CheckExact(total))
        return UNUSUAL;
    out->start_ns = PyLong_AsUnsignedLongLong(start);
    out->time_ns = PyLong_AsUnsignedLongLong(time);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return UNUSUAL;
    }
    out->total = PyFloat_AS_DOUBLE(total);
    PyObject *layout = PyTuple_GET_ITEM(previous, 2);
    out->counts = PyTuple_GET_ITEM(previous, 3);
    out->same_layout = 0;
    if (!PyList_CheckExact(layout)) return OK; /* an exponential layout: never equal */
    Py_ssize_t n = PyList_GET_SIZE(layout);
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyFloat_CheckExact(PyList_GET_ITEM(layout, i))) return UNUSUAL;
    if (n != point->n_bounds) return OK;
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyFloat_AS_DOUBLE(PyList_GET_ITEM(layout, i)) != point->bounds[i]) return OK;
    out->same_layout = 1;
    /* Python differences lists of another length too (map stops at the shorter) */
    if (!PyList_CheckExact(out->counts) || PyList_GET_SIZE(out->counts) != point->n_counts)
        return UNUSUAL;
    for (Py_ssize_t i = 0; i < point->n_counts; i++) {
        PyObject *count = PyList_GET_ITEM(out->counts, i);
        if (!PyLong_CheckExact(count)) return UNUSUAL;
        int overflow;
        long long value = PyLong_AsLongLongAndOverflow(count, &overflow);
        if (overflow || value < 0 || value >= EXACT_INT_LIMIT) return UNUSUAL;
    }
    return OK;
}

static PyObject *float_of(uint64_t bits) { return PyFloat_FromDouble(as_double(bits)); }

static PyObject *int_of(uint64_t bits) { return PyLong_FromUnsignedLongLong(bits); }

/* A list of n 8-byte wire values, each made a Python object by ``make``. */
static PyObject *list_of(const uint64_t *values, int n, PyObject *(*make)(uint64_t)) {
    PyObject *list = PyList_New(n);
    for (int i = 0; list && i < n; i++) {
        PyObject *item = make(values[i]);
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static int append_stat(Context *ctx, PyObject *service, PyObject *name, PyObject *stat,
                       PyObject *attrs, PyObject *time, double value) {
    PyObject *key = PyTuple_Pack(4, service, name, stat, attrs);
    PyObject *sample = key ? PyFloat_FromDouble(value) : NULL;
    int failed = !sample || append3(ctx, key, time, sample) < 0;
    Py_XDECREF(key);
    Py_XDECREF(sample);
    return failed ? -1 : 0;
}

/* One usual histogram point: rca.ingest.otlp_decode._explicit_histogram_point. Returns 1 when
 * it was decoded here, 0 when Python must decode it (nothing was appended or stored), -1 on
 * error. */
static int emit_histogram_point(Context *ctx, PyObject *service, PyObject *name,
                                int cumulative, const HistogramPoint *point) {
    PyObject *attrs = attributes(&point->attrs);
    PyObject *key = attrs ? PyTuple_Pack(4, service, name, Py_None, attrs) : NULL;
    PyObject *time = NULL, *layout = NULL, *counts = NULL, *start = NULL, *total = NULL;
    PyObject *state = NULL, *previous_obj = NULL;
    int result = -1;
    if (!key) goto done;
    Previous previous;
    int has_previous = 0;
    if (cumulative) {
        previous_obj = PyDict_GetItemWithError(ctx->distributions, key);
        if (!previous_obj && PyErr_Occurred()) goto done;
        Py_XINCREF(previous_obj);
        if (previous_obj) {
            if (read_previous(previous_obj, point, &previous) != OK) {
                result = 0;
                goto done;
            }
            has_previous = 1;
        }
    }
    result = 1;
    ctx->points++;
    if (has_previous && point->time_ns <= previous.time_ns) goto done; /* a repeat */
    /* the interval this point covers: its own counts, or the difference from the previous */
    double counts_in[MAX_BUCKETS + 1], sum = point->sum;
    uint64_t span_start = point->start_ns;
    for (int i = 0; i < point->n_counts; i++) counts_in[i] = (double)point->counts[i];
    result = -1;
    if (cumulative) {
        /* a new list, as Python stores: equal bounds can differ in sign of zero */
        layout = list_of(point->bound_bits, point->n_bounds, float_of);
        counts = layout ? list_of(point->counts, point->n_counts, int_of) : NULL;
        start = counts ? PyLong_FromUnsignedLongLong(point->start_ns) : NULL;
        time = start ? PyLong_FromUnsignedLongLong(point->time_ns) : NULL;
        total = time ? PyFloat_FromDouble(point->sum) : NULL;
        state = total ? PyTuple_Pack(5, start, time, layout, counts, total) : NULL;
        if (!state || PyDict_SetItem(ctx->distributions, key, state) < 0) goto done;
        if (has_previous && previous.same_layout &&
            (point->start_ns == 0 || point->start_ns == previous.start_ns)) {
            double delta[MAX_BUCKETS + 1];
            int increasing = 1;
            for (int i = 0; i < point->n_counts; i++) {
                long long before = PyLong_AsLongLong(PyList_GET_ITEM(previous.counts, i));
                delta[i] = (double)((long long)point->counts[i] - before);
                increasing &= delta[i] >= 0;
            }
            if (increasing) {
                memcpy(counts_in, delta, point->n_counts * sizeof(double));
                sum = point->sum - previous.total;
                span_start = previous.time_ns;
            }
        }
    } else {
        time = PyLong_FromUnsignedLongLong(point->time_ns);
        if (!time) goto done;
    }
    /* explicit_intervals: open ends closed by min and max, else as Prometheus does */
    int n = point->n_counts;
    double lower[MAX_BUCKETS + 1], upper[MAX_BUCKETS + 1];
    double first = point->bounds[0] <= 0 ? point->bounds[0] : 0.0;
    if (point->has_min) first = point->bounds[0] < point->min ? point->bounds[0] : point->min;
    double last = point->bounds[point->n_bounds - 1];
    if (point->has_max) last = last > point->max ? last : point->max;
    lower[0] = first;
    upper[n - 1] = last;
    for (int i = 0; i < point->n_bounds; i++) {
        lower[i + 1] = point->bounds[i];
        upper[i] = point->bounds[i];
    }
    /* quantiles, then mean and rate: _distribution_stats */
    double count = 0;
    for (int i = 0; i < n; i++) count += counts_in[i];
    if (count > 0) {
        int i = 0;
        double before = 0.0;
        for (int q = 0; q < 3; q++) {
            double rank = QUANTILES[q] * count;
            while (i < n - 1 && before + counts_in[i] < rank) {
                before += counts_in[i];
                i++;
            }
            double share = counts_in[i] > 0 ? (rank - before) / counts_in[i] : 1.0;
            double value = lower[i] + (upper[i] - lower[i]) * (1.0 < share ? 1.0 : share);
            if (value == value &&
                append_stat(ctx, service, name, QUANTILE_STATS[q], attrs, time, value) < 0)
                goto done;
        }
        if (append_stat(ctx, service, name, MEAN, attrs, time, sum / count) < 0) goto done;
    }
    if (0 < span_start && span_start < point->time_ns &&
        append_stat(ctx, service, name, RATE, attrs, time,
                    count * 1e9 / (double)(point->time_ns - span_start)) < 0)
        goto done;
    result = 1;
done:
    if (result == 1 && PyErr_Occurred()) result = -1;
    Py_XDECREF(attrs);
    Py_XDECREF(key);
    Py_XDECREF(time);
    Py_XDECREF(layout);
    Py_XDECREF(counts);
    Py_XDECREF(start);
    Py_XDECREF(total);
    Py_XDECREF(state);
    Py_XDECREF(previous_obj);
    return result;
}

/* Every point of a histogram, in order: here when usual, else by histogram_point in Python. */
static int emit_histogram(Context *ctx, PyObject *service, const MetricLayout *metric) {
    PyObject *name = text(metric->name);
    if (!name) return -1;
    HistogramPoint *point = PyMem_Malloc(sizeof *point);
    if (!point) {
        Py_DECREF(name);
        PyErr_NoMemory();
        return -1;
    }
    PyObject *cumulative = PyBool_FromLong(metric->cumulative);
    Buf data = metric->data;
    uint32_t field;
    int wire_type, failed = 0;
    while (!failed && data.p < data.end) {
        read_tag(&data, &field, &wire_type); /* checked by scan_points */
        Buf sub;
        if (field != 1) {
            skip(&data, wire_type);
            continue;
        }
        read_len(&data, &sub);
        int done = 0;
        if (scan_histogram_point(sub, point) == OK) {
            done = emit_histogram_point(ctx, service, name, metric->cumulative, point);
            failed = done < 0;
        }
        if (!failed && !done) {
            PyObject *raw = PyBytes_FromStringAndSize((const char *)sub.p, sub.end - sub.p);
            PyObject *ignored = raw ? PyObject_CallFunctionObjArgs(ctx->histogram_point, service,
                                                                    name, cumulative, raw, NULL)
                                    : NULL;
            failed = ignored == NULL;
            Py_XDECREF(raw);
            Py_XDECREF(ignored);
        }
    }
    Py_DECREF(cumulative);
    PyMem_Free(point);
    Py_DECREF(name);
    return failed ? -1 : 0;
}

/* ---- the record ---- */

typedef struct {
    Buf metric;
    Py_ssize_t resource; /* index into the resources list */
} Item;

typedef struct {
    Item *items;
    Py_ssize_t n, cap;
} Items;

static int push(Items *items, Buf metric, Py_ssize_t resource) {
    if (items->n == items->cap) {
        Py_ssize_t cap = items->cap ? items->cap * 2 : 64;
        Item *grown = PyMem_Realloc(items->items, cap * sizeof(Item));
        if (!grown) {
            PyErr_NoMemory();
            return -1;
        }
        items->items = grown;
        items->cap = cap;
    }
    items->items[items->n].metric = metric;
    items->items[items->n].resource = resource;
    items->n++;
    return 0;
}

/* The resource bytes of a ResourceMetrics (every occurrence, concatenated: protobuf merges
 * them) and its metrics; UNUSUAL for anything unexpected in the outer layers. */
static int scan_resource_metrics(Buf rm, PyObject *resources, Items *items, int *failed) {
    uint32_t field;
    int wire_type;
    Py_ssize_t index = PyList_GET_SIZE(resources);
    PyObject *resource = PyBytes_FromStringAndSize("", 0);
    if (!resource || PyList_Append(resources, resource) < 0) {
        Py_XDECREF(resource);
        *failed = 1;
        return UNUSUAL;
    }
    Py_DECREF(resource);
    while (rm.p < rm.end) {
        if (read_tag(&rm, &field, &wire_type) != OK) return UNUSUAL;
        if (field != 1 && field != 2) {
            if (skip(&rm, wire_type) != OK) return UNUSUAL;
            continue;
        }
        Buf sub;
        if (wire_type != LEN || read_len(&rm, &sub) != OK) return UNUSUAL;
        if (field == 1) {
            PyObject *part = PyBytes_FromStringAndSize((const char *)sub.p, sub.end - sub.p);
            PyObject *joined = PyList_GET_ITEM(resources, index);
            Py_INCREF(joined);
            PyBytes_ConcatAndDel(&joined, part);
            if (!joined || PyList_SetItem(resources, index, joined) < 0) {
                *failed = 1;
                return UNUSUAL;
            }
            continue;
        }
        while (sub.p < sub.end) { /* ScopeMetrics */
            Buf metric;
            if (read_tag(&sub, &field, &wire_type) != OK) return UNUSUAL;
            if (field != 2) {
                if (skip(&sub, wire_type) != OK) return UNUSUAL;
                continue;
            }
            if (wire_type != LEN || read_len(&sub, &metric) != OK) return UNUSUAL;
            if (push(items, metric, index) < 0) {
                *failed = 1;
                return UNUSUAL;
            }
        }
    }
    return OK;
}

PyDoc_STRVAR(decode_doc,
"decode(value, counters, distributions, keys, times, values, service_of, metric_fallback,\n"
"       histogram_point, counter_rate)\n"
"--\n\n"
"Append the samples of one parsed OTLP record's gauges, sums and explicit histograms to keys,\n"
"times and values. service_of(resource_bytes) names a resource's service;\n"
"metric_fallback(service, metric_bytes) and histogram_point(service, name, cumulative,\n"
"point_bytes) decode in Python what this does not. Returns the number of points decoded\n"
"here, or None when the whole record must be decoded in Python (nothing was appended).");

static PyObject *decode(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer value;
    PyObject *service_of, *metric_fallback;
    Context ctx;
    if (!PyArg_ParseTuple(args, "y*O!O!O!O!O!OOOO", &value, &PyDict_Type, &ctx.counters,
                          &PyDict_Type, &ctx.distributions, &PyList_Type, &ctx.keys,
                          &PyList_Type, &ctx.times, &PyList_Type, &ctx.values, &service_of,
                          &metric_fallback, &ctx.histogram_point, &ctx.counter_rate))
        return NULL;
    ctx.points = 0;
    PyObject *resources = PyList_New(0), *services = NULL, *result = NULL;
    Items items = {NULL, 0, 0};
    int failed = !resources, unusual = 0;
    Buf record = {(const uint8_t *)value.buf, (const uint8_t *)value.buf + value.len};
    uint32_t field;
    int wire_type;
    while (!failed && !unusual && record.p < record.end) {
        Buf rm;
        if (read_tag(&record, &field, &wire_type) != OK) {
            unusual = 1;
        } else if (field != 1) {
            unusual = skip(&record, wire_type) != OK;
        } else if (wire_type != LEN || read_len(&record, &rm) != OK) {
            unusual = 1;
        } else {
            unusual = scan_resource_metrics(rm, resources, &items, &failed) != OK;
        }
    }
    if (!failed && unusual) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (failed) goto done;
    services = PyList_New(PyList_GET_SIZE(resources));
    if (!services) goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(resources); i++) {
        PyObject *service = PyObject_CallOneArg(service_of, PyList_GET_ITEM(resources, i));
        if (!service) goto done;
        PyList_SET_ITEM(services, i, service);
    }
    for (Py_ssize_t i = 0; i < items.n; i++) {
        PyObject *service = PyList_GET_ITEM(services, items.items[i].resource);
        MetricLayout metric;
        if (scan_metric(items.items[i].metric, &metric) == OK) {
            int done = -2;
            if (metric.kind == HISTOGRAM && scan_lengths(metric.data) == OK)
                done = emit_histogram(&ctx, service, &metric);
            else if (metric.kind != HISTOGRAM && scan_points(metric.data) == OK)
                done = emit_metric(&ctx, service, &metric);
            if (done == -1) goto done;
            if (done == 0) continue;
        }
        Buf raw = items.items[i].metric;
        PyObject *bytes = PyBytes_FromStringAndSize((const char *)raw.p, raw.end - raw.p);
        PyObject *ignored = bytes ? PyObject_CallFunctionObjArgs(metric_fallback, service,
                                                                  bytes, NULL)
                                  : NULL;
        Py_XDECREF(bytes);
        if (!ignored) goto done;
        Py_DECREF(ignored);
    }
    result = PyLong_FromSsize_t(ctx.points);
done:
    PyMem_Free(items.items);
    Py_XDECREF(resources);
    Py_XDECREF(services);
    PyBuffer_Release(&value);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_otlp_wire",
    .m_doc = "Compiled fast path of rca.ingest.otlp_decode (gauges, sums and explicit "
             "histograms from the OTLP wire).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__otlp_wire(void) {
    RATE = PyUnicode_InternFromString("rate");
    MEAN = PyUnicode_InternFromString("mean");
    QUANTILE_STATS[0] = PyUnicode_InternFromString("p50");
    QUANTILE_STATS[1] = PyUnicode_InternFromString("p90");
    QUANTILE_STATS[2] = PyUnicode_InternFromString("p99");
    if (!RATE || !MEAN || !QUANTILE_STATS[0] || !QUANTILE_STATS[1] || !QUANTILE_STATS[2])
        return NULL;
    return PyModule_Create(&module);
}
