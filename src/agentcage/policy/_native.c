/* The byte passes the policy engine cannot make fast in Python.
 *
 * `canonical` drops separator bytes and folds the rest through a table; `runs`
 * finds maximal runs of table-marked bytes (16 bytes at a time with SSE2 for the
 * base64 and hex alphabets); `words` finds stretches of short lowercase words (seed
 * phrases); `entropy` counts a byte histogram
 * (`collections.Counter` spends 18 ns a byte on it). CPython's `bytes.translate` with a
 * delete set and `bytes.find` of a repeated needle spend 1.2-1.7 ns a byte on
 * prose, mostly on mispredicted branches at every word boundary. Here both are
 * branch-free per byte, so a megabyte body costs a few tenths of a millisecond.
 *
 * The pure-Python versions in `agentcage.policy.runs` and
 * `agentcage.policy.leaks.encodings` define the results; tests check that these
 * give exactly the same.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static int
get_table(Py_buffer *table, const char *what)
{
    if (table->len != 256) {
        PyErr_Format(PyExc_ValueError, "%s must be 256 bytes, not %zd", what, table->len);
        return -1;
    }
    return 0;
}

/* canonical(data, fold, keep) -> bytes
 *
 * Each byte b with keep[b] != 0 becomes fold[b]; other bytes are dropped. A
 * backslash followed by 'n', 'r' or 't' (a JSON or C escape of a line break or
 * tab) is dropped whole, scanning left to right like `re.sub(rb"\\[nrt]", b"")`.
 */
static PyObject *
canonical(PyObject *module, PyObject *args)
{
    Py_buffer data, fold, keep;
    if (!PyArg_ParseTuple(args, "y*y*y*:canonical", &data, &fold, &keep))
        return NULL;
    PyObject *result = NULL;
    if (get_table(&fold, "fold") < 0 || get_table(&keep, "keep") < 0)
        goto done;
    const unsigned char *in = data.buf;
    const unsigned char *f = fold.buf;
    const unsigned char *k = keep.buf;
    Py_ssize_t n = data.len;
    result = PyBytes_FromStringAndSize(NULL, n);
    if (result == NULL)
        goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    Py_ssize_t j = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        if (c == '\\' && i + 1 < n) {
            unsigned char next = in[i + 1];
            if (next == 'n' || next == 'r' || next == 't') {
                i++;
                continue;
            }
        }
        out[j] = f[c];
        j += k[c] != 0;
    }
    Py_END_ALLOW_THREADS
    if (_PyBytes_Resize(&result, j) < 0)
        result = NULL;
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&fold);
    PyBuffer_Release(&keep);
    return result;
}

static int
append_span(PyObject *list, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *span = Py_BuildValue("(nn)", start, end);
    if (span == NULL)
        return -1;
    int failed = PyList_Append(list, span);
    Py_DECREF(span);
    return failed;
}

#ifdef __SSE2__
static int
is_base64_char(int b)
{
    return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
           b == '+' || b == '/' || b == '-' || b == '_';
}

static int
is_hex_char(int b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

/* The marks tables of the base64 and hex alphabets, as `runs` is given them (1 for a
   member, 0 otherwise): a caller's table that equals one of them, compared in one
   memcmp per call, gets that alphabet's vector path. Filled when the module loads. */
static unsigned char base64_marks[256];
static unsigned char hex_marks[256];

static void
init_marks(void)
{
    for (int b = 0; b < 256; b++) {
        base64_marks[b] = (unsigned char)is_base64_char(b);
        hex_marks[b] = (unsigned char)is_hex_char(b);
    }
}

static inline __m128i
in_range(__m128i x, char low, char high)
{
    /* Signed compares: bytes from 0x80 up are negative, so never in an ASCII range. */
    return _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8((char)(low - 1))),
                         _mm_cmplt_epi8(x, _mm_set1_epi8((char)(high + 1))));
}

/* Bit k set when byte k of the 16 at `at` is not in the base64 alphabet. */
static inline unsigned
base64_gaps16(const unsigned char *at)
{
    __m128i x = _mm_loadu_si128((const __m128i *)at);
    __m128i letters = _mm_or_si128(in_range(x, 'A', 'Z'), in_range(x, 'a', 'z'));
    __m128i signs = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('+')),
                                              _mm_cmpeq_epi8(x, _mm_set1_epi8('/'))),
                                 _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('-')),
                                              _mm_cmpeq_epi8(x, _mm_set1_epi8('_'))));
    __m128i member = _mm_or_si128(_mm_or_si128(letters, in_range(x, '0', '9')), signs);
    return ~(unsigned)_mm_movemask_epi8(member) & 0xFFFFu;
}

/* Bit k set when byte k of the 16 at `at` is not a hex digit. */
static inline unsigned
hex_gaps16(const unsigned char *at)
{
    __m128i x = _mm_loadu_si128((const __m128i *)at);
    __m128i letters = _mm_or_si128(in_range(x, 'a', 'f'), in_range(x, 'A', 'F'));
    __m128i member = _mm_or_si128(letters, in_range(x, '0', '9'));
    return ~(unsigned)_mm_movemask_epi8(member) & 0xFFFFu;
}
#endif

/* A block at `at` holding gaps (bit k set: byte k is not marked): the run its first
   gap ends is reported if long enough, and `start` moves past its last gap. Runs
   between two gaps of one block are shorter than the block, which the caller makes
   shorter than `min_len`. -1 on a Python error. */
static inline int
end_block(PyObject *result, Py_ssize_t at, unsigned gaps, Py_ssize_t *start, Py_ssize_t min_len)
{
    Py_ssize_t first = at + __builtin_ctz(gaps);
    if (__builtin_expect(first - *start >= min_len, 0) && append_span(result, *start, first) < 0)
        return -1;
    *start = at + (31 - __builtin_clz(gaps)) + 1;
    return 0;
}

/* runs(data, marks, min_len) -> list[tuple[int, int]]
 *
 * (start, end) of each maximal run of bytes b with marks[b] != 0 that is at
 * least min_len long, in order.
 */
static PyObject *
runs(PyObject *module, PyObject *args)
{
    Py_buffer data, marks;
    Py_ssize_t min_len;
    if (!PyArg_ParseTuple(args, "y*y*n:runs", &data, &marks, &min_len))
        return NULL;
    PyObject *result = NULL;
    if (get_table(&marks, "marks") < 0)
        goto done;
    if (min_len < 1) {
        PyErr_SetString(PyExc_ValueError, "min_len must be at least 1");
        goto done;
    }
    result = PyList_New(0);
    if (result == NULL)
        goto done;
    const unsigned char *in = data.buf;
    const unsigned char *m = marks.buf;
    Py_ssize_t n = data.len, start = 0, i = 0;
    /* `start` is where the current run began. Prose switches between run and gap
       every few bytes, so a branch on each byte would be mispredicted at every
       switch. Eight bytes at a time instead: when runs shorter than eight do not
       count, only the first gap in a block can end one worth reporting, and the
       last gap says where the next one starts. */
#ifdef __SSE2__
    /* Sixteen at a time for the base64 and hex alphabets (runs under 16 do not count
       then). */
    unsigned (*gaps16)(const unsigned char *) = NULL;
    if (min_len >= 16 && memcmp(m, base64_marks, 256) == 0)
        gaps16 = base64_gaps16;
    else if (min_len >= 16 && memcmp(m, hex_marks, 256) == 0)
        gaps16 = hex_gaps16;
    if (gaps16 != NULL) {
        for (; i + 16 <= n; i += 16) {
            unsigned gaps = gaps16(in + i);
            if (gaps != 0 && end_block(result, i, gaps, &start, min_len) < 0) {
                Py_CLEAR(result);
                goto done;
            }
        }
    }
#endif
    if (min_len >= 8) {
        for (; i + 8 <= n; i += 8) {
            const unsigned char *at = in + i;
            unsigned gaps = (unsigned)(m[at[0]] == 0) | (unsigned)(m[at[1]] == 0) << 1 |
                            (unsigned)(m[at[2]] == 0) << 2 | (unsigned)(m[at[3]] == 0) << 3 |
                            (unsigned)(m[at[4]] == 0) << 4 | (unsigned)(m[at[5]] == 0) << 5 |
                            (unsigned)(m[at[6]] == 0) << 6 | (unsigned)(m[at[7]] == 0) << 7;
            if (gaps != 0 && end_block(result, i, gaps, &start, min_len) < 0) {
                Py_CLEAR(result);
                goto done;
            }
        }
    }
    /* The rest byte by byte, with masks rather than a branch per byte. */
    for (; i < n; i++) {
        Py_ssize_t member = m[in[i]] != 0;
        Py_ssize_t ended = (1 - member) & (i - start >= min_len);
        if (__builtin_expect(ended, 0) && append_span(result, start, i) < 0) {
            Py_CLEAR(result);
            goto done;
        }
        Py_ssize_t inside = -member; /* all ones within a run */
        start = (start & inside) | ((i + 1) & ~inside);
    }
    if (n - start >= min_len && append_span(result, start, n) < 0)
        Py_CLEAR(result);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&marks);
    return result;
}

/* words(data, gaps, shortest, longest, max_gap, min_words) -> list[tuple[int, int]]
 *
 * (start, end) of each stretch of at least min_words lowercase ASCII words, each
 * shortest..longest letters long and not glued to an upper-case letter, digit or
 * underscore, one after another with 1..max_gap bytes between them that are all
 * marked in `gaps` (a JSON escape `\n`, `\r` or `\t` counts as two such bytes).
 * Seed phrases are such stretches; prose rarely is, since its short words ("a",
 * "to") break them. One pass, no allocation per word.
 */
static int
glue(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int
gap_ok(const unsigned char *in, Py_ssize_t from, Py_ssize_t to, const unsigned char *g)
{
    for (Py_ssize_t k = from; k < to; k++) {
        if (in[k] == '\\' && k + 1 < to && (in[k + 1] == 'n' || in[k + 1] == 'r' || in[k + 1] == 't')) {
            k++;
            continue;
        }
        if (!g[in[k]])
            return 0;
    }
    return 1;
}

static PyObject *
words(PyObject *module, PyObject *args)
{
    Py_buffer data, gaps;
    Py_ssize_t shortest, longest, max_gap, min_words;
    if (!PyArg_ParseTuple(args, "y*y*nnnn:words", &data, &gaps, &shortest, &longest, &max_gap,
                          &min_words))
        return NULL;
    PyObject *result = NULL;
    if (get_table(&gaps, "gaps") < 0)
        goto done;
    result = PyList_New(0);
    if (result == NULL)
        goto done;
    const unsigned char *in = data.buf;
    const unsigned char *g = gaps.buf;
    Py_ssize_t n = data.len, i = 0, first = 0, last = 0, count = 0;
    while (i < n) {
        unsigned char c = in[i];
        if (c < 'a' || c > 'z') {
            i++;
            continue;
        }
        Py_ssize_t s = i;
        while (i < n && in[i] >= 'a' && in[i] <= 'z')
            i++;
        Py_ssize_t len = i - s;
        int word = len >= shortest && len <= longest && !(s > 0 && glue(in[s - 1])) &&
                   !(i < n && glue(in[i]));
        int follows = word && count > 0 && s - last <= max_gap && gap_ok(in, last, s, g);
        if (!follows) {
            if (count >= min_words && append_span(result, first, last) < 0) {
                Py_CLEAR(result);
                goto done;
            }
            count = 0;
        }
        if (word) {
            if (count == 0)
                first = s;
            count++;
            last = i;
        }
    }
    if (count >= min_words && append_span(result, first, last) < 0)
        Py_CLEAR(result);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&gaps);
    return result;
}

/* entropy(data) -> float
 *
 * Shannon entropy of the byte histogram, in bits per byte (0 for empty data).
 */
static PyObject *
entropy(PyObject *module, PyObject *args)
{
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*:entropy", &data))
        return NULL;
    Py_ssize_t counts[256] = {0};
    const unsigned char *in = data.buf;
    Py_ssize_t n = data.len;
    for (Py_ssize_t i = 0; i < n; i++)
        counts[in[i]]++;
    PyBuffer_Release(&data);
    double bits = 0.0;
    for (int b = 0; b < 256; b++) {
        if (counts[b]) {
            double p = (double)counts[b] / (double)n;
            bits -= p * log2(p);
        }
    }
    return PyFloat_FromDouble(bits);
}

static PyMethodDef methods[] = {
    {"canonical", canonical, METH_VARARGS, "Fold and drop separator bytes."},
    {"runs", runs, METH_VARARGS, "Maximal runs of marked bytes at least min_len long."},
    {"entropy", entropy, METH_VARARGS, "Shannon entropy of the bytes, in bits per byte."},
    {"words", words, METH_VARARGS, "Stretches of short lowercase words, such as seed phrases."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "agentcage.policy._native", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__native(void)
{
#ifdef __SSE2__
    init_marks();
#endif
    return PyModule_Create(&module);
}
