/* The byte passes the policy engine cannot make fast in Python.
 *
 * `canonical` drops separator bytes and folds the rest through a table (16 bytes at
 * a time with SSSE3 when the CPU has it and the tables are the usual ones); `runs`
 * finds maximal runs of table-marked bytes (16 bytes at a time with SSE2 for the
 * base64 and hex alphabets); `words` finds stretches of short lowercase words (seed
 * phrases); `grams` says where the matcher's automaton need search (`gram_filter.py`);
 * `dejunked` makes the leak inspector's copies with a junk byte taken out (`interleave.py`);
 * `anchors` finds many short needles in one pass (`formats/anchor_search.py`);
 * `entropy` counts a byte histogram
 * (`collections.Counter` spends 18 ns a byte on it). CPython's `bytes.translate` with a
 * delete set and `bytes.find` of a repeated needle spend 1.2-1.7 ns a byte on
 * prose, mostly on mispredicted branches at every word boundary. Here both are
 * branch-free per byte, so a megabyte body costs a few tenths of a millisecond.
 *
 * The pure-Python versions in `agentcage.policy.runs`, `agentcage.policy.leaks.encodings`,
 * `agentcage.policy.leaks.interleave` and `agentcage.policy.leaks.gram_filter` define the
 * results; tests check that these give exactly the same.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef unsigned long long u64;

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
static Py_ssize_t
canonical_scalar(const unsigned char *in, Py_ssize_t i, Py_ssize_t end, Py_ssize_t n,
                 const unsigned char *f, const unsigned char *k, unsigned char *out,
                 Py_ssize_t *j_out)
{
    Py_ssize_t j = *j_out;
    for (; i < end; i++) {
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
    *j_out = j;
    return i; /* past `end` by one when an escape straddled it */
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <tmmintrin.h>
#define HAVE_SSSE3_CANONICAL 1

/* Where the kept bytes of each 8-byte group go: for each 8-bit keep mask, the
   indexes of its set bits, then 0x80 (pshufb writes 0 there). */
static unsigned char compact_shuffle[256][8];
/* How many bytes each keep mask keeps: SSSE3 does not imply POPCNT, and without it
   GCC's popcount builtin is a call into libgcc. */
static unsigned char compact_count[256];

static void
init_compact(void)
{
    for (int m = 0; m < 256; m++) {
        int at = 0;
        for (int b = 0; b < 8; b++)
            if (m >> b & 1)
                compact_shuffle[m][at++] = (unsigned char)b;
        compact_count[m] = (unsigned char)at;
        while (at < 8)
            compact_shuffle[m][at++] = 0x80;
    }
}

/* Whether the tables are the ones this path hard-codes: fold lower-cases ASCII
   letters and leaves every other byte, keep drops only ASCII bytes. The dropped
   set itself is read from `keep`. */
static int
simple_tables(const unsigned char *f, const unsigned char *k)
{
    for (int b = 0; b < 256; b++) {
        int lower = b >= 'A' && b <= 'Z' ? b + 32 : b;
        if (f[b] != lower || (b >= 0x80 && !k[b]))
            return 0;
    }
    return 1;
}

/* 16 bytes at a time: the dropped bytes found with two nibble lookups (a bitmap of
   the set by low nibble, a bit by high nibble), letters lower-cased by a compare
   and an add, and the kept bytes moved together 8 at a time by a shuffle. A group
   holding a backslash goes through the scalar loop (it may start an escape). */
__attribute__((target("ssse3"))) static void
canonical_ssse3(const unsigned char *in, Py_ssize_t n, const unsigned char *k,
                const unsigned char *f, unsigned char *out, Py_ssize_t *j_out)
{
    unsigned char by_low[16] = {0};
    for (int b = 0; b < 0x80; b++)
        if (!k[b])
            by_low[b & 15] |= (unsigned char)(1u << (b >> 4));
    const __m128i rows = _mm_loadu_si128((const __m128i *)by_low);
    const __m128i bits = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i low_nibble = _mm_set1_epi8(0x0F);
    const __m128i backslash = _mm_set1_epi8('\\');
    Py_ssize_t i = 0, j = *j_out;
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(in + i));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(x, backslash))) {
            i = canonical_scalar(in, i, i + 16, n, f, k, out, &j);
            continue;
        }
        __m128i lo = _mm_and_si128(x, low_nibble);
        /* Bytes from 0x80 have a high nibble of 8 or more: `bits` gives them 0 (kept). */
        __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), low_nibble);
        __m128i hit = _mm_and_si128(_mm_shuffle_epi8(rows, lo), _mm_shuffle_epi8(bits, hi));
        unsigned keep = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(hit, _mm_setzero_si128()));
        __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('A' - 1)),
                                      _mm_cmplt_epi8(x, _mm_set1_epi8('Z' + 1)));
        __m128i folded = _mm_add_epi8(x, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
        unsigned first = keep & 0xFF, second = keep >> 8;
        __m128i a = _mm_shuffle_epi8(folded,
                                     _mm_loadl_epi64((const __m128i *)compact_shuffle[first]));
        _mm_storel_epi64((__m128i *)(out + j), a);
        j += compact_count[first];
        __m128i b = _mm_shuffle_epi8(_mm_srli_si128(folded, 8),
                                     _mm_loadl_epi64((const __m128i *)compact_shuffle[second]));
        _mm_storel_epi64((__m128i *)(out + j), b);
        j += compact_count[second];
        i += 16;
    }
    canonical_scalar(in, i, n, n, f, k, out, &j);
    *j_out = j;
}
#endif

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
#ifdef HAVE_SSSE3_CANONICAL
    /* Below a few hundred bytes the table check costs more than the vectors save. */
    if (n >= 512 && __builtin_cpu_supports("ssse3") && simple_tables(f, k))
        canonical_ssse3(in, n, k, f, out, &j);
    else
#endif
        canonical_scalar(in, 0, n, n, f, k, out, &j);
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
static unsigned char groups_marks[256]; /* capitals, digits, space, dash: IBANs, cards */

static void
init_marks(void)
{
    for (int b = 0; b < 256; b++) {
        base64_marks[b] = (unsigned char)is_base64_char(b);
        hex_marks[b] = (unsigned char)is_hex_char(b);
        groups_marks[b] = (unsigned char)((b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
                                          b == ' ' || b == '-');
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

/* Bit k set when byte k of the 16 at `at` is not a capital, digit, space or dash. */
static inline unsigned
groups_gaps16(const unsigned char *at)
{
    __m128i x = _mm_loadu_si128((const __m128i *)at);
    __m128i signs = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(' ')),
                                 _mm_cmpeq_epi8(x, _mm_set1_epi8('-')));
    __m128i member =
        _mm_or_si128(_mm_or_si128(in_range(x, 'A', 'Z'), in_range(x, '0', '9')), signs);
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

/* The bits of `lo` that start a run of at least `length` (1..63) set bits, where a
   run may go on into `hi`, the 64 bits after `lo`: by doubling the length looked
   for, a few shifts however long the run. Written out step by step so that with
   `length` a constant each step is a fixed shift. */
static inline __attribute__((always_inline)) u64
runs_of(u64 lo, u64 hi, Py_ssize_t length)
{
#define RUN_STEP(k)                                                                     \
    do {                                                                                \
        lo &= (lo >> (k)) | (hi << (64 - (k)));                                         \
        hi &= hi >> (k);                                                                \
    } while (0)
    Py_ssize_t have = 1;
    if (length >= 2) { RUN_STEP(1); have = 2; }
    if (length >= 4) { RUN_STEP(2); have = 4; }
    if (length >= 8) { RUN_STEP(4); have = 8; }
    if (length >= 16) { RUN_STEP(8); have = 16; }
    if (length >= 32) { RUN_STEP(16); have = 32; }
    if (length > have)
        RUN_STEP(length - have);
#undef RUN_STEP
    return lo;
}

#ifdef __SSE2__
/* Runs in whole 64-byte blocks from `*i` on, for an alphabet with a 16-byte gap
   function: where most blocks of text hold gaps but no run worth reporting, such a
   block costs four vector classifications and a few bit operations. A block that
   may end one (its first gap ends a long run begun before it) or hold one between
   two of its gaps goes gap by gap. -1 on a Python error. */
static inline __attribute__((always_inline)) int
runs_in_blocks(PyObject *result, const unsigned char *in, Py_ssize_t n, Py_ssize_t *i,
               Py_ssize_t *start, Py_ssize_t min_len, unsigned (*gaps16)(const unsigned char *))
{
    for (; *i + 64 <= n; *i += 64) {
        const unsigned char *at = in + *i;
        u64 gaps = (u64)gaps16(at) | (u64)gaps16(at + 16) << 16 | (u64)gaps16(at + 32) << 32 |
                   (u64)gaps16(at + 48) << 48;
        if (gaps == 0)
            continue;
        int first = __builtin_ctzll(gaps), last = 63 - __builtin_clzll(gaps);
        /* The members between the first gap and the last, where a whole run can lie. */
        u64 inner = ~gaps & (last == 0 ? 0 : (1ULL << last) - 1) & ~((2ULL << first) - 1);
        int closes = *i + first - *start >= min_len;
        if (closes || (min_len < 64 && runs_of(inner, 0, min_len) != 0)) {
            for (u64 left = gaps; left; left &= left - 1) {
                Py_ssize_t gap = *i + __builtin_ctzll(left);
                if (gap - *start >= min_len && append_span(result, *start, gap) < 0)
                    return -1;
                *start = gap + 1;
            }
        }
        *start = *i + last + 1;
    }
    return 0;
}
#endif

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
    /* For the base64 and hex alphabets (runs under 16 do not count then): whole blocks
       of 64 (`runs_in_blocks`), the rest sixteen at a time. */
    unsigned (*gaps16)(const unsigned char *) = NULL;
    if (min_len >= 16 && memcmp(m, base64_marks, 256) == 0)
        gaps16 = base64_gaps16;
    else if (min_len >= 16 && memcmp(m, hex_marks, 256) == 0)
        gaps16 = hex_gaps16;
    /* Each alphabet's gap function named as a constant, so it is inlined. */
    int blocks = gaps16 == base64_gaps16
                     ? runs_in_blocks(result, in, n, &i, &start, min_len, base64_gaps16)
                 : gaps16 == hex_gaps16
                     ? runs_in_blocks(result, in, n, &i, &start, min_len, hex_gaps16)
                     : 0;
    if (blocks < 0) {
        Py_CLEAR(result);
        goto done;
    }
    if (gaps16 != NULL) {
        for (; i + 16 <= n; i += 16) {
            unsigned gaps = gaps16(in + i);
            if (gaps != 0 && end_block(result, i, gaps, &start, min_len) < 0) {
                Py_CLEAR(result);
                goto done;
            }
        }
    }
    /* Capitals and digits (card numbers, IBANs) are wanted from 14 bytes on: 64 bytes
       classified at once where most blocks can be passed over whole (prose: spaces
       between short words); then sixteen compared at once, their gaps handled as two
       blocks of eight. */
    if (gaps16 == NULL && min_len >= 8 && memcmp(m, groups_marks, 256) == 0) {
        if (runs_in_blocks(result, in, n, &i, &start, min_len, groups_gaps16) < 0) {
            Py_CLEAR(result);
            goto done;
        }
        for (; i + 16 <= n; i += 16) {
            unsigned gaps = groups_gaps16(in + i);
            if (gaps == 0)
                continue;
            if ((gaps & 0xFFu) && end_block(result, i, gaps & 0xFFu, &start, min_len) < 0) {
                Py_CLEAR(result);
                goto done;
            }
            if ((gaps >> 8) && end_block(result, i + 8, gaps >> 8, &start, min_len) < 0) {
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

/* words(data, prefixes, shortest, longest, max_gap, min_words) -> list[tuple[int, int]]
 *
 * (start, end) of each stretch of at least min_words words, one after another.
 * A word is a run of lowercase ASCII letters, shortest..longest long, not glued
 * to an upper-case letter, digit or underscore, and (when `prefixes` is not
 * empty) whose first four letters are marked in `prefixes`: 27**4 bytes indexed
 * by the letters as 1..26, 0 past a short word's end. Between two words of a
 * stretch: 1..max_gap bytes, each a space, tab, CR, LF, comma or quote, a JSON
 * escape `\n`, `\r` or `\t` counting as two such bytes. Seed phrases are such
 * stretches; prose rarely is. 64 bytes at a time: their classes as bit masks
 * (SSE2 compares), then one step per word boundary rather than per byte; a block
 * whose breaks leave no room for a stretch between them takes no step at all.
 */

struct classes {
    u64 letter, gap, slash;
};

static inline int
gap_byte(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == '"' || c == '\'';
}

/* Each byte's classes for the scan without vectors, as bits: 1 letter, 2 gap,
   4 backslash. One lookup a byte and no branch (a branch per class had been most of
   the scan where there is no SSE2: arm64 hosts and Macs). */
static unsigned char word_classes[256];

static void
init_word_classes(void)
{
    for (int c = 0; c < 256; c++)
        word_classes[c] = (unsigned char)((c >= 'a' && c <= 'z') | gap_byte((unsigned char)c) << 1 |
                                          (c == '\\') << 2);
}

static void
classes_scalar(const unsigned char *at, Py_ssize_t len, struct classes *k)
{
    u64 letter = 0, gap = 0, slash = 0;
    for (Py_ssize_t j = 0; j < len; j++) {
        u64 c = word_classes[at[j]];
        letter |= (c & 1) << j;
        gap |= (c >> 1 & 1) << j;
        slash |= (c >> 2) << j;
    }
    k->letter = letter;
    k->gap = gap;
    k->slash = slash;
}

#ifdef __SSE2__
static inline u64
mask16(__m128i m, int k)
{
    return (u64)(unsigned)_mm_movemask_epi8(m) << (16 * k);
}

static inline __attribute__((always_inline)) void
classes_sse2(const unsigned char *at, struct classes *k)
{
    memset(k, 0, sizeof *k);
    for (int q = 0; q < 4; q++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(at + 16 * q));
#define EQ(c) _mm_cmpeq_epi8(x, _mm_set1_epi8(c))
        k->letter |= mask16(in_range(x, 'a', 'z'), q);
        __m128i gap = _mm_or_si128(_mm_or_si128(_mm_or_si128(EQ(' '), EQ('\t')),
                                                _mm_or_si128(EQ('\r'), EQ('\n'))),
                                   _mm_or_si128(_mm_or_si128(EQ(','), EQ('"')), EQ('\'')));
        k->gap |= mask16(gap, q);
        k->slash |= mask16(EQ('\\'), q);
#undef EQ
    }
}
#endif

/* Bit k set when the byte at `at` + k (before `n`) is n, r or t: with a backslash
   before it, a JSON escape. */
static inline __attribute__((always_inline)) u64
nrt_from(const unsigned char *in, Py_ssize_t at, Py_ssize_t n)
{
    u64 bits = 0;
#ifdef __SSE2__
    if (n - at >= 64) {
        for (int q = 0; q < 4; q++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(in + at + 16 * q));
            __m128i nrt = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('n')),
                                                    _mm_cmpeq_epi8(x, _mm_set1_epi8('r'))),
                                       _mm_cmpeq_epi8(x, _mm_set1_epi8('t')));
            bits |= mask16(nrt, q);
        }
        return bits;
    }
#endif
    for (Py_ssize_t k = 0; k < 64 && at + k < n; k++)
        if (in[at + k] == 'n' || in[at + k] == 'r' || in[at + k] == 't')
            bits |= 1ULL << k;
    return bits;
}

static inline Py_ssize_t
prefix_index(const unsigned char *w, Py_ssize_t len)
{
    Py_ssize_t index = 0;
    for (int j = 0; j < 4; j++)
        index = index * 27 + (j < len ? w[j] - 'a' + 1 : 0);
    return index;
}

struct word_rules {
    const unsigned char *prefixes; /* NULL: no prefix test */
    Py_ssize_t shortest, longest, max_gap, min_words;
};

static inline int
is_glue(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static inline int
is_escape(const unsigned char *in, Py_ssize_t i, Py_ssize_t n)
{
    return in[i] == '\\' && i + 1 < n && (in[i + 1] == 'n' || in[i + 1] == 'r' || in[i + 1] == 't');
}

/* The exact search, byte by byte, in [lo, hi): a stretch of the data that holds no
   byte or word that breaks a stretch, so none crosses its ends. */
static int
stretches_in(PyObject *result, const unsigned char *in, Py_ssize_t n, Py_ssize_t lo,
             Py_ssize_t hi, const struct word_rules *r)
{
    Py_ssize_t i = lo, count = 0, first = 0, last = 0;
    while (i < hi && lo > 0 && in[i] >= 'a' && in[i] <= 'z' && in[lo - 1] >= 'a' &&
           in[lo - 1] <= 'z')
        i++; /* the tail of a word that began before the stretch */
    while (i < hi) {
        if (is_escape(in, i, n)) {
            i += 2;
            continue;
        }
        if (in[i] < 'a' || in[i] > 'z') {
            i++;
            continue;
        }
        Py_ssize_t s = i;
        while (i < n && in[i] >= 'a' && in[i] <= 'z')
            i++;
        Py_ssize_t len = i - s;
        int word = len >= r->shortest && len <= r->longest && !(s > 0 && is_glue(in[s - 1])) &&
                   !(i < n && is_glue(in[i])) &&
                   (r->prefixes == NULL || r->prefixes[prefix_index(in + s, len)]);
        if (!(word && count > 0 && s - last <= r->max_gap)) {
            if (count >= r->min_words && append_span(result, first, last) < 0)
                return -1;
            count = 0;
        }
        if (word) {
            if (count == 0)
                first = s;
            count++;
            last = i;
        }
    }
    if (count >= r->min_words && append_span(result, first, last) < 0)
        return -1;
    return 0;
}

/* Whether the letters at s start a listed word (for the last bytes of the data). */
static int
stretch_word_ok(const unsigned char *in, Py_ssize_t s, Py_ssize_t n, const struct word_rules *r)
{
    Py_ssize_t len = 0;
    while (len < 4 && s + len < n && in[s + len] >= 'a' && in[s + len] <= 'z')
        len++;
    return r->prefixes[prefix_index(in + s, len)] != 0;
}

static inline __attribute__((always_inline)) void
classes_of(const unsigned char *in, Py_ssize_t n, Py_ssize_t base, struct classes *k)
{
#ifdef __SSE2__
    if (n - base >= 64) {
        classes_sse2(in + base, k);
        return;
    }
#endif
    classes_scalar(in + base, n - base < 64 ? n - base : 64, k);
}

/* The exact search runs only between two breaks with `min_words` listed words
   between them and no other break: a stretch needs that many. The words since the
   last break are counted 64 bytes at a time (a popcount, no step per word), and
   looked up only once there are `min_words` of them, as a search for a run skips
   ahead: the last of the first `min_words` is looked up, then the one before, and
   so on; the first unlisted one found is the new last break, the words before it
   are never looked up and the ones after it are known to be listed. In prose, with
   a short word, a number or a path every few words, the count rarely gets there;
   the lookup of every word, a branch each, had been most of the pass. When all are
   listed (`hot`), every next word is looked up until one is not or a break comes:
   the exact search gets the stretch from the break before the run to that one. */
struct word_block {
    Py_ssize_t base;
    u64 words; /* starts of pending words in the 64 bytes at base */
};

struct word_scan {
    PyObject *result;
    const unsigned char *in;
    Py_ssize_t n;
    const struct word_rules *r;
    struct word_block *pending; /* the words since the last break, block by block */
    Py_ssize_t blocks, count;   /* how many blocks, how many words in them */
    Py_ssize_t known;           /* how many of the first words are known to be listed */
    Py_ssize_t last_break;
    int hot;                    /* the words since `region`, the last break + 1, are listed */
    Py_ssize_t region;
};

static inline int
listed(const struct word_scan *w, Py_ssize_t s)
{
    return w->r->prefixes == NULL || stretch_word_ok(w->in, s, w->n, w->r);
}

/* Breaks from `first` to `last`, and no word between them. */
static int
at_breaks(struct word_scan *w, Py_ssize_t first, Py_ssize_t last)
{
    if (w->hot) {
        w->hot = 0;
        if (stretches_in(w->result, w->in, w->n, w->region, first, w->r) < 0)
            return -1;
    }
    w->blocks = w->count = w->known = 0;
    w->last_break = last;
    return 0;
}

/* The block holding pending word `index`, and that word's bit in it. */
static inline __attribute__((always_inline)) Py_ssize_t
find_word(const struct word_scan *w, Py_ssize_t index, int *bit)
{
    Py_ssize_t b = 0;
    for (;; b++) {
        Py_ssize_t here = __builtin_popcountll(w->pending[b].words);
        if (index < here)
            break;
        index -= here;
    }
    u64 words = w->pending[b].words;
    while (index-- > 0)
        words &= words - 1;
    *bit = __builtin_ctzll(words);
    return b;
}

/* Pending words through `index` (in block `b`, at `bit`) dropped: that word broke a run. */
static void
drop_through(struct word_scan *w, Py_ssize_t index, Py_ssize_t b, int bit)
{
    w->last_break = w->pending[b].base + bit;
    w->pending[b].words &= bit == 63 ? 0 : ~0ULL << (bit + 1);
    w->blocks -= b;
    memmove(w->pending, w->pending + b, sizeof(struct word_block) * (size_t)w->blocks);
    w->count -= index + 1;
}

/* Words at the set bits of `words`, 64 bytes from `base`, after any pending. */
static inline __attribute__((always_inline)) int
at_words(struct word_scan *w, Py_ssize_t base, u64 words)
{
    w->pending[w->blocks].base = base;
    w->pending[w->blocks].words = words;
    w->blocks++;
    w->count += __builtin_popcountll(words);
    Py_ssize_t need = w->r->min_words;
    while (w->count > 0 && (w->hot || w->count >= need)) {
        int bit;
        if (w->hot) { /* each word in order, until one is not listed */
            Py_ssize_t index = 0;
            for (Py_ssize_t b = 0; b < w->blocks; b++) {
                for (u64 left = w->pending[b].words; left; left &= left - 1, index++) {
                    bit = __builtin_ctzll(left);
                    if (listed(w, w->pending[b].base + bit))
                        continue;
                    w->hot = 0;
                    if (stretches_in(w->result, w->in, w->n, w->region,
                                     w->pending[b].base + bit, w->r) < 0)
                        return -1;
                    drop_through(w, index, b, bit);
                    w->known = 0;
                    goto next;
                }
            }
            w->blocks = w->count = w->known = 0;
            return 0;
        }
        /* From word need - 1 back to the first not known. */
        Py_ssize_t b = find_word(w, need - 1, &bit), index = need - 1;
        for (;;) {
            if (index < w->known) { /* need listed words in a row: a run */
                w->hot = 1;
                w->region = w->last_break + 1;
                break;
            }
            if (!listed(w, w->pending[b].base + bit)) {
                drop_through(w, index, b, bit);
                w->known = need - 2 - index + 1;
                break;
            }
            index--;
            u64 lower = w->pending[b].words & ((1ULL << bit) - 1);
            while (lower == 0 && index >= w->known) {
                b--;
                lower = w->pending[b].words;
            }
            if (lower)
                bit = 63 - __builtin_clzll(lower);
        }
    next:;
    }
    return 0;
}

/* Whether `min_words` words could come one after another with no break between
   them in this block: counting from the words pending since the last break (`count`),
   the words between each two breaks, up to the last break. In prose a break (a short
   word, a number, punctuation) comes every few words, and then none can; only the
   words after the last break are left pending. */
static inline __attribute__((always_inline)) int
room_for_stretch(u64 breaks, u64 cand, Py_ssize_t count, Py_ssize_t min_words,
                 Py_ssize_t shortest)
{
    /* First by bytes: the words a segment of k bytes can hold; cheaper than counting. */
    u64 clear = ~breaks & ((1ULL << (63 - __builtin_clzll(breaks))) - 1);
    Py_ssize_t span = min_words * (shortest + 1) - 1;
    if (span < 64 && count * (shortest + 1) + __builtin_ctzll(breaks) < span &&
        runs_of(clear, 0, span) == 0)
        return 0;
    u64 below = 0; /* the bits below the break before this segment */
    for (u64 left = breaks; left; left &= left - 1) {
        u64 upto = (left & -left) - 1;
        count += __builtin_popcountll(cand & upto & ~below);
        if (count >= min_words)
            return 1;
        count = 0;
        below = upto;
    }
    return 0;
}

/* The blocks of the data in order (see `words`), with the rules as arguments so a
   caller passing constants gets a copy specialised to them. */
static inline __attribute__((always_inline)) int
scan_blocks(struct word_scan *scan, Py_ssize_t shortest, Py_ssize_t longest, Py_ssize_t min_words)
{
    /* On bit masks, 64 bytes at a time: the positions that break any stretch (a
       byte that is neither letter nor gap, a word too short or too long) and the
       starts of the other words, handed in order to `at_breaks` and `at_words`. */
    const unsigned char *in = scan->in;
    Py_ssize_t n = scan->n;
    struct classes cur, next;
    classes_of(in, n, 0, &cur);
    u64 prev_letter = 0, escaped_first = 0;
    for (Py_ssize_t base = 0; base < n; base += 64) {
        Py_ssize_t len = n - base < 64 ? n - base : 64;
        int more = base + 64 < n;
        if (more)
            classes_of(in, n, base + 64, &next);
        else
            memset(&next, 0, sizeof next);
        u64 valid = len == 64 ? ~0ULL : (1ULL << len) - 1;
        /* Prose has no backslash: the bytes after them are classified only when needed. */
        u64 escape = cur.slash ? cur.slash & nrt_from(in, base + 1, n) : 0;
        u64 escaped = (escape << 1) | escaped_first;
        escaped_first = escape >> 63;
        u64 letter = cur.letter & ~escaped;
        u64 next_letter = next.letter & ~(escape >> 63); /* its first byte may be escaped */
        u64 other = ~(letter | cur.gap | escape | escaped) & valid;
        u64 starts = letter & ~((letter << 1) | prev_letter);
        u64 ends = letter & ~((letter >> 1) | (next_letter << 63));
        u64 next_end0 = next_letter & 1 & ~((next_letter >> 1) & 1);
        u64 breaks = other;
        /* Words shorter than `shortest` (up to 2) or longer than `longest`. */
        if (shortest > 1)
            breaks |= starts & ends;
        if (shortest > 2)
            breaks |= starts & ((ends >> 1) | (next_end0 << 63));
        breaks |= runs_of(letter, next_letter, longest + 1);
        /* The words left, and the breaks between them, in order. */
        u64 cand = starts & ~breaks;
        if (len == 64 && breaks && !scan->hot &&
            !room_for_stretch(breaks, cand, scan->count, min_words, shortest)) {
            /* No two breaks far enough apart for a stretch: what lies before the last
               one is dropped at once, as `at_breaks` would drop it piece by piece. */
            int top = 63 - __builtin_clzll(breaks);
            scan->blocks = scan->count = scan->known = 0;
            scan->last_break = base + top;
            u64 tail = top == 63 ? 0 : cand & (~0ULL << (top + 1));
            if (tail && at_words(scan, base, tail) < 0)
                return -1;
        } else {
            while (cand | breaks) {
                if (breaks == 0) {
                    if (at_words(scan, base, cand) < 0)
                        return -1;
                    break;
                }
                int first = __builtin_ctzll(breaks);
                u64 before = cand & ((1ULL << first) - 1);
                if (before && at_words(scan, base, before) < 0)
                    return -1;
                cand &= ~before;
                u64 run = cand ? breaks & ((1ULL << __builtin_ctzll(cand)) - 1) : breaks;
                breaks &= ~run;
                if (at_breaks(scan, base + first, base + 63 - __builtin_clzll(run)) < 0)
                    return -1;
            }
        }
        prev_letter = (letter >> 63) & (len == 64);
        cur = next;
    }
    return 0;
}

/* The scan for the rules every caller passes, with them as constants so the shifts
   are immediates; on a CPU with POPCNT (any x86-64 from 2008 on), a copy built for it,
   where each word count is one instruction instead of a call into libgcc. */
static int
scan_usual(struct word_scan *scan)
{
    return scan_blocks(scan, 3, 8, 12);
}

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_POPCNT_WORDS 1
__attribute__((target("popcnt"))) static int
scan_usual_popcnt(struct word_scan *scan)
{
    return scan_blocks(scan, 3, 8, 12);
}
#endif

static PyObject *
words(PyObject *module, PyObject *args)
{
    Py_buffer data, prefixes;
    struct word_rules r;
    struct word_scan scan = {0};
    if (!PyArg_ParseTuple(args, "y*y*nnnn:words", &data, &prefixes, &r.shortest, &r.longest,
                          &r.max_gap, &r.min_words))
        return NULL;
    PyObject *result = NULL;
    if (prefixes.len != 0 && prefixes.len != 27 * 27 * 27 * 27) {
        PyErr_SetString(PyExc_ValueError, "prefixes must be empty or 27**4 bytes");
        goto done;
    }
    if (r.shortest < 1 || r.longest < r.shortest || r.longest > 48 || r.min_words < 1) {
        PyErr_SetString(PyExc_ValueError, "need 1 <= shortest <= longest <= 48, min_words >= 1");
        goto done;
    }
    result = PyList_New(0);
    if (result == NULL)
        goto done;
    r.prefixes = prefixes.len ? prefixes.buf : NULL;
    const unsigned char *in = data.buf;
    Py_ssize_t n = data.len;
    scan = (struct word_scan){result, in, n, &r, NULL, 0, 0, 0, -1, 0, 0};
    /* Each block pending holds a word, and at most min_words - 1 wait between calls. */
    scan.pending = PyMem_Malloc(sizeof(struct word_block) * (size_t)(r.min_words + 1));
    if (scan.pending == NULL) {
        PyErr_NoMemory();
        Py_CLEAR(result);
        goto done;
    }
    int scanned;
    if (r.shortest == 3 && r.longest == 8 && r.min_words == 12) {
#ifdef HAVE_POPCNT_WORDS
        if (__builtin_cpu_supports("popcnt"))
            scanned = scan_usual_popcnt(&scan);
        else
#endif
            scanned = scan_usual(&scan);
    } else {
        scanned = scan_blocks(&scan, r.shortest, r.longest, r.min_words);
    }
    if (scanned < 0)
        goto fail;
    if (scan.hot && stretches_in(result, in, n, scan.region, n, &r) < 0)
        goto fail;
    goto done;
fail:
    Py_CLEAR(result);
done:
    PyMem_Free(scan.pending);
    PyBuffer_Release(&data);
    PyBuffer_Release(&prefixes);
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

/* grams(data, first, second, solo, shift) -> list[int]
 *
 * Each i, a multiple of 4 with i + 4 <= len(data), whose four bytes g(i) (read
 * little-endian as x) hash to a bit set in `first`, h = (x * 2654435761 mod 2**32)
 * >> shift, bit h & 7 of byte h >> 3; and then g(i + 4) hashes to a bit set in
 * `second`, or g(i) to one in `solo`, or i + 8 > len(data). Each table is
 * 2**(32 - shift) bits. Any string of 8 bytes or more in `data` covers one such i
 * with its first 7 bytes, and the next gram too when it is 11 bytes or more: tables
 * of each wanted string's 4-grams at offsets 0..3 (first), the grams 4 bytes after
 * them (second) and those of the offsets with no whole gram 4 bytes after (solo)
 * find every place one can start (within 3 bytes before a hit). The second gram
 * makes a hit on a common gram of the data (`thef` in prose) rare.
 */
static inline uint32_t
gram_hash(const unsigned char *at, int shift)
{
    uint32_t x = (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 |
                 (uint32_t)at[3] << 24;
    return (uint32_t)(x * 2654435761u) >> shift;
}

static inline int
bit_set(const unsigned char *bits, uint32_t h)
{
    return bits[h >> 3] >> (h & 7) & 1;
}

/* Appends the int `i` to `list`; -1 with an exception set on failure. */
static int
append_index(PyObject *list, Py_ssize_t i)
{
    PyObject *index = PyLong_FromSsize_t(i);
    if (index == NULL)
        return -1;
    int failed = PyList_Append(list, index);
    Py_DECREF(index);
    return failed;
}

static PyObject *
grams(PyObject *module, PyObject *args)
{
    Py_buffer data, first, second, solo;
    int shift;
    if (!PyArg_ParseTuple(args, "y*y*y*y*i:grams", &data, &first, &second, &solo, &shift))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t size = shift >= 3 && shift <= 29 ? ((Py_ssize_t)1 << (32 - shift)) / 8 : -1;
    if (size < 0 || first.len != size || second.len != size || solo.len != size) {
        PyErr_SetString(PyExc_ValueError,
                        "tables must be 2**(32 - shift) bits each, 3 <= shift <= 29");
        goto done;
    }
    result = PyList_New(0);
    if (result == NULL)
        goto done;
    const unsigned char *in = data.buf;
    const unsigned char *one = first.buf, *two = second.buf, *alone = solo.buf;
    for (Py_ssize_t i = 0; i + 4 <= data.len; i += 4) {
        uint32_t h = gram_hash(in + i, shift);
        if (!bit_set(one, h))
            continue;
        if (i + 8 <= data.len && !bit_set(two, gram_hash(in + i + 4, shift)) &&
            !bit_set(alone, h))
            continue;
        if (append_index(result, i) < 0) {
            Py_CLEAR(result);
            goto done;
        }
    }
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&first);
    PyBuffer_Release(&second);
    PyBuffer_Release(&solo);
    return result;
}

/* dejunked(data, periods) -> bytes
 *
 * For each period p in `periods` (bytes, each 2..255) and each phase j < p, `data`
 * without the bytes at j, j + p, j + 2p, ...; all of them joined by NUL, in that
 * order. One allocation and one pass per copy, where Python's slicings made three
 * to five objects per copy (`interleave.periodic` defines the result).
 */
static PyObject *
dejunked(PyObject *module, PyObject *args)
{
    Py_buffer data, periods;
    if (!PyArg_ParseTuple(args, "y*y*:dejunked", &data, &periods))
        return NULL;
    PyObject *result = NULL;
    const unsigned char *in = data.buf;
    const unsigned char *ps = periods.buf;
    Py_ssize_t n = data.len, total = 0, copies = 0;
    for (Py_ssize_t k = 0; k < periods.len; k++) {
        Py_ssize_t p = ps[k];
        if (p < 2) {
            PyErr_SetString(PyExc_ValueError, "every period must be at least 2");
            goto done;
        }
        for (Py_ssize_t j = 0; j < p; j++) {
            Py_ssize_t removed = j < n ? (n - j + p - 1) / p : 0;
            total += n - removed;
            copies++;
        }
    }
    if (copies > 1)
        total += copies - 1;
    result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL)
        goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    int first = 1;
    for (Py_ssize_t k = 0; k < periods.len; k++) {
        Py_ssize_t p = ps[k];
        for (Py_ssize_t j = 0; j < p; j++) {
            if (!first)
                *out++ = 0;
            first = 0;
            Py_ssize_t head = j < n ? j : n;
            memcpy(out, in, head);
            out += head;
            /* After the junk byte at j: p - 1 kept bytes, then the next junk byte. */
            for (Py_ssize_t at = j + 1; at < n; at += p) {
                Py_ssize_t keep = n - at < p - 1 ? n - at : p - 1;
                memcpy(out, in + at, keep);
                out += keep;
            }
        }
    }
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&periods);
    return result;
}

/* anchors(data, needles, buckets, lo, hi) -> dict[bytes, list[int]]
 *
 * Each needle (of a sequence of non-empty bytes) that occurs wholly within
 * data[lo:hi], with where it starts each time, overlapping occurrences included, in
 * order (a needle listed twice is one key, its places listed once). One
 * pass for all the needles, where a substring search per needle made one pass each
 * (`formats/anchor_search.py`): each position's first three bytes are looked up in
 * tables of which needles may start there, by low and high nibble, for 8 buckets of
 * needles (`buckets[k]` is needle k's), 16 positions at a time with SSSE3; only the
 * needles of a bucket that hits at all three bytes are compared. The buckets only
 * group needles for speed: any assignment gives the same result. A needle shorter
 * than three bytes leaves its bucket open at the bytes it lacks.
 */
#define ANCHOR_BUCKETS 8
#define ANCHOR_BYTES 3

struct needle_set {
    Py_ssize_t count;
    const unsigned char **at;
    Py_ssize_t *len;
    Py_ssize_t *order; /* needle indexes by bucket, in order within one */
    Py_ssize_t first[ANCHOR_BUCKETS + 1];
    unsigned char low[ANCHOR_BYTES][16], high[ANCHOR_BYTES][16];
    PyObject **needle; /* the bytes objects, the keys of `hits` */
    PyObject *hits;    /* needle -> list of starts, for those found */
};

/* The needles of the buckets in `bits` compared at `p`; each match appended. */
static int
needles_at(const struct needle_set *s, const unsigned char *in, Py_ssize_t p, Py_ssize_t hi,
           unsigned bits)
{
    for (; bits; bits &= bits - 1) {
        int b = __builtin_ctz(bits);
        for (Py_ssize_t k = s->first[b]; k < s->first[b + 1]; k++) {
            Py_ssize_t j = s->order[k];
            if (p + s->len[j] > hi || memcmp(in + p, s->at[j], (size_t)s->len[j]) != 0)
                continue;
            PyObject *spots = PyDict_GetItemWithError(s->hits, s->needle[j]);
            if (spots == NULL) {
                if (PyErr_Occurred() || (spots = PyList_New(0)) == NULL)
                    return -1;
                int failed = PyDict_SetItem(s->hits, s->needle[j], spots);
                Py_DECREF(spots); /* the dict holds it */
                if (failed)
                    return -1;
            } else {
                /* The same bytes listed twice match at the same place twice. */
                Py_ssize_t size = PyList_GET_SIZE(spots);
                if (size && PyLong_AsSsize_t(PyList_GET_ITEM(spots, size - 1)) == p)
                    continue;
            }
            PyObject *at = PyLong_FromSsize_t(p);
            if (at == NULL)
                return -1;
            int failed = PyList_Append(spots, at);
            Py_DECREF(at);
            if (failed)
                return -1;
        }
    }
    return 0;
}

/* Positions from `p` to `hi` one at a time. A byte past `hi` leaves every bucket open:
   the comparison then finds that the needle does not fit. */
static int
needles_scalar(const struct needle_set *s, const unsigned char *in, Py_ssize_t p, Py_ssize_t hi)
{
    for (; p < hi; p++) {
        unsigned bits = 0xFF;
        for (int k = 0; k < ANCHOR_BYTES && p + k < hi; k++)
            bits &= (unsigned)(s->low[k][in[p + k] & 15] & s->high[k][in[p + k] >> 4]);
        if (bits && needles_at(s, in, p, hi, bits) < 0)
            return -1;
    }
    return 0;
}

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_SSSE3_ANCHORS 1

__attribute__((target("ssse3"))) static inline __m128i
nibble_hits(const unsigned char *at, __m128i low, __m128i high)
{
    const __m128i mask = _mm_set1_epi8(0x0F);
    __m128i x = _mm_loadu_si128((const __m128i *)at);
    return _mm_and_si128(_mm_shuffle_epi8(low, _mm_and_si128(x, mask)),
                         _mm_shuffle_epi8(high, _mm_and_si128(_mm_srli_epi16(x, 4), mask)));
}

/* 16 positions at a time while all their bytes lie before `hi`: returns where the rest
   starts, or -1 on a Python error. */
__attribute__((target("ssse3"))) static Py_ssize_t
needles_ssse3(const struct needle_set *s, const unsigned char *in, Py_ssize_t p, Py_ssize_t hi)
{
    __m128i low[ANCHOR_BYTES], high[ANCHOR_BYTES];
    for (int k = 0; k < ANCHOR_BYTES; k++) {
        low[k] = _mm_loadu_si128((const __m128i *)s->low[k]);
        high[k] = _mm_loadu_si128((const __m128i *)s->high[k]);
    }
    unsigned char bits[16];
    for (; p + 16 + ANCHOR_BYTES - 1 <= hi; p += 16) {
        __m128i m = nibble_hits(in + p, low[0], high[0]);
        for (int k = 1; k < ANCHOR_BYTES; k++)
            m = _mm_and_si128(m, nibble_hits(in + p + k, low[k], high[k]));
        unsigned any =
            ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(m, _mm_setzero_si128())) & 0xFFFFu;
        if (__builtin_expect(any == 0, 1))
            continue;
        _mm_storeu_si128((__m128i *)bits, m);
        for (; any; any &= any - 1) {
            int j = __builtin_ctz(any);
            if (needles_at(s, in, p + j, hi, bits[j]) < 0)
                return -1;
        }
    }
    return p;
}
#endif

/* The tables and the bucket order of the needles in `seq`; -1 on an error set. */
static int
needles_from(struct needle_set *s, PyObject *seq, const unsigned char *bucket)
{
    for (Py_ssize_t j = 0; j < s->count; j++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, j);
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) == 0 || bucket[j] >= ANCHOR_BUCKETS) {
            PyErr_SetString(PyExc_ValueError,
                            "each needle must be non-empty bytes, and each bucket below 8");
            return -1;
        }
        s->needle[j] = item;
        s->at[j] = (const unsigned char *)PyBytes_AS_STRING(item);
        s->len[j] = PyBytes_GET_SIZE(item);
        unsigned char bit = (unsigned char)(1u << bucket[j]);
        s->first[bucket[j] + 1]++;
        for (int k = 0; k < ANCHOR_BYTES; k++) {
            if (k < s->len[j]) {
                s->low[k][s->at[j][k] & 15] |= bit;
                s->high[k][s->at[j][k] >> 4] |= bit;
                continue;
            }
            for (int v = 0; v < 16; v++) {
                s->low[k][v] |= bit;
                s->high[k][v] |= bit;
            }
        }
    }
    for (int b = 0; b < ANCHOR_BUCKETS; b++)
        s->first[b + 1] += s->first[b];
    Py_ssize_t placed[ANCHOR_BUCKETS];
    memcpy(placed, s->first, sizeof placed);
    for (Py_ssize_t j = 0; j < s->count; j++)
        s->order[placed[bucket[j]]++] = j;
    return 0;
}

static PyObject *
anchors(PyObject *module, PyObject *args)
{
    Py_buffer data, buckets;
    PyObject *needles;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "y*Oy*nn:anchors", &data, &needles, &buckets, &lo, &hi))
        return NULL;
    struct needle_set s = {0};
    PyObject *result = NULL;
    PyObject *seq = PySequence_Fast(needles, "needles must be a sequence of bytes");
    if (seq == NULL)
        goto done;
    s.count = PySequence_Fast_GET_SIZE(seq);
    if (buckets.len != s.count) {
        PyErr_SetString(PyExc_ValueError, "buckets must hold one byte per needle");
        goto done;
    }
    if (lo < 0 || lo > hi || hi > data.len) {
        PyErr_SetString(PyExc_ValueError, "need 0 <= lo <= hi <= len(data)");
        goto done;
    }
    s.at = PyMem_Malloc(sizeof *s.at * (size_t)(s.count + 1));
    s.len = PyMem_Malloc(sizeof *s.len * (size_t)(s.count + 1));
    s.order = PyMem_Malloc(sizeof *s.order * (size_t)(s.count + 1));
    s.needle = PyMem_Malloc(sizeof *s.needle * (size_t)(s.count + 1));
    s.hits = PyDict_New();
    if (s.at == NULL || s.len == NULL || s.order == NULL || s.needle == NULL || s.hits == NULL) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    if (needles_from(&s, seq, buckets.buf) < 0)
        goto done;
    const unsigned char *in = data.buf;
    Py_ssize_t p = lo;
    if (s.count > 0) {
#ifdef HAVE_SSSE3_ANCHORS
        if (__builtin_cpu_supports("ssse3"))
            p = needles_ssse3(&s, in, p, hi);
#endif
        if (p < 0 || needles_scalar(&s, in, p, hi) < 0)
            goto done;
    }
    result = s.hits;
    s.hits = NULL;
done:
    Py_XDECREF(s.hits);
    Py_XDECREF(seq);
    PyMem_Free(s.at);
    PyMem_Free(s.len);
    PyMem_Free(s.order);
    PyMem_Free(s.needle);
    PyBuffer_Release(&data);
    PyBuffer_Release(&buckets);
    return result;
}

/* followed(data, lead, marks) -> bool
 *
 * Whether some byte `lead` is followed by a byte b with marks[b] != 0: whether an
 * escape such as `\u` or `=3D` can be in the data at all, before a regex walks
 * it. (In code, where backslashes and equals signs are everywhere, `re` stops at
 * each one, and a two-byte `in` is far slower than memchr.) Sixteen bytes compared
 * with `lead` at once; the byte after each hit looked up in `marks`.
 */
static PyObject *
followed(PyObject *module, PyObject *args)
{
    Py_buffer data, marks;
    unsigned char lead;
    if (!PyArg_ParseTuple(args, "y*by*:followed", &data, &lead, &marks))
        return NULL;
    PyObject *result = NULL;
    if (get_table(&marks, "marks") < 0)
        goto done;
    const unsigned char *in = data.buf;
    const unsigned char *m = marks.buf;
    Py_ssize_t n = data.len, i = 0;
    int found = 0;
#ifdef __SSE2__
    const __m128i wanted = _mm_set1_epi8((char)lead);
    for (; !found && i + 17 <= n; i += 16) {
        unsigned hits = (unsigned)_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(in + i)), wanted));
        for (; hits; hits &= hits - 1)
            if (m[in[i + __builtin_ctz(hits) + 1]]) {
                found = 1;
                break;
            }
    }
#endif
    for (; !found && i + 1 < n; i++)
        found = in[i] == lead && m[in[i + 1]];
    result = PyBool_FromLong(found);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&marks);
    return result;
}

/* A base64 run decoded from each of its first four offsets (the first only when the
   run is `all_below` bytes or longer), as `alignments.python_b64_alignments` defines
   it: the same calls of `decode` (binascii.a2b_base64, passed in) on the same bytes,
   so every quirk of its non-strict mode is kept; what this saves is the interpreter's
   slicing and bookkeeping around ~60,000 runs a MiB of a package-lock.json. */
static PyObject *
b64_pieces(PyObject *module, PyObject *args)
{
    Py_buffer run;
    Py_ssize_t all_below;
    PyObject *decode, *error;
    if (!PyArg_ParseTuple(args, "y*nOO:b64_pieces", &run, &all_below, &decode, &error))
        return NULL;
    PyObject *pieces = NULL, *view = NULL, *piece = NULL, *tail = NULL;
    const char *in = run.buf;
    Py_ssize_t n = run.len;
    while (n > 0 && in[n - 1] == '=')
        n--;
    char *body = PyMem_Malloc(n > 0 ? (size_t)n : 1);
    if (body == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        body[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    pieces = PyList_New(0);
    if (pieces == NULL)
        goto done;
    int offsets = run.len < all_below ? 4 : 1;
    for (int offset = 0; offset < offsets; offset++) {
        Py_ssize_t len = n - offset;
        if (len <= 0)
            break; /* an empty part decodes to nothing */
        Py_ssize_t usable = len - (len % 4 == 1);
        Py_ssize_t whole = usable - usable % 4;
        view = PyMemoryView_FromMemory(body + offset, whole, PyBUF_READ);
        if (view == NULL)
            goto fail;
        piece = PyObject_CallOneArg(decode, view);
        Py_CLEAR(view);
        if (piece != NULL && whole < usable) {
            char last[4] = {'=', '=', '=', '='};
            memcpy(last, body + offset + whole, (size_t)(usable - whole));
            PyObject *bytes = PyBytes_FromStringAndSize(last, 4);
            if (bytes == NULL)
                goto fail;
            tail = PyObject_CallOneArg(decode, bytes);
            Py_DECREF(bytes);
            if (tail == NULL)
                Py_CLEAR(piece);
            else {
                PyBytes_Concat(&piece, tail);
                Py_CLEAR(tail);
            }
        }
        if (piece == NULL) {
            if (!PyErr_ExceptionMatches(error))
                goto fail;
            PyErr_Clear(); /* not base64 from this offset */
            continue;
        }
        if (PyBytes_GET_SIZE(piece) > 0 && PyList_Append(pieces, piece) < 0)
            goto fail;
        Py_CLEAR(piece);
    }
    goto done;
fail:
    Py_XDECREF(view);
    Py_XDECREF(piece);
    Py_XDECREF(tail);
    Py_CLEAR(pieces);
done:
    PyMem_Free(body);
    PyBuffer_Release(&run);
    return pieces;
}

/* notable(pieces, first, sample, share): the indexes of the pieces (bytes) that need
   the unwrapper's look of their own, as `notable_pieces.python_notable` defines them: empty,
   a first byte marked in `first` (256 bytes), `ftyp` at 4, all below 0x80 or all from
   0x80, or maybe wide text (a BOM's first two bytes; at least 16 bytes in the first
   `sample` and NULs at least `share` of half of them, compared in doubles as Python
   compares an int with a float). */
static int
notable_piece(const unsigned char *p, Py_ssize_t n, const unsigned char *first,
              Py_ssize_t sample, double share)
{
    if (n == 0 || first[p[0]])
        return 1;
    if (n >= 8 && memcmp(p + 4, "ftyp", 4) == 0)
        return 1;
    unsigned char any = 0, all = 0xFF;
    for (Py_ssize_t i = 0; i < n; i++) {
        any |= p[i];
        all &= p[i];
    }
    if (!(any & 0x80) || (all & 0x80))
        return 1;
    if (n >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) || (p[0] == 0xFE && p[1] == 0xFF) ||
                   (p[0] == 0 && p[1] == 0)))
        return 1;
    Py_ssize_t s = n < sample ? n : sample;
    if (s < 16)
        return 0;
    Py_ssize_t zeros = 0;
    for (Py_ssize_t i = 0; i < s; i++)
        zeros += p[i] == 0;
    return (double)zeros >= share * (double)(s / 2);
}

static PyObject *
notable(PyObject *module, PyObject *args)
{
    PyObject *pieces;
    Py_buffer first;
    Py_ssize_t sample;
    double share;
    if (!PyArg_ParseTuple(args, "O!y*nd:notable", &PyList_Type, &pieces, &first, &sample, &share))
        return NULL;
    PyObject *out = NULL;
    if (first.len != 256) {
        PyErr_SetString(PyExc_ValueError, "first must be 256 bytes");
        goto done;
    }
    out = PyList_New(0);
    if (out == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pieces); i++) {
        PyObject *piece = PyList_GET_ITEM(pieces, i);
        if (!PyBytes_Check(piece)) {
            PyErr_SetString(PyExc_TypeError, "pieces must be bytes");
            Py_CLEAR(out);
            goto done;
        }
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(piece);
        if (!notable_piece(p, PyBytes_GET_SIZE(piece), first.buf, sample, share))
            continue;
        if (append_index(out, i) < 0) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    PyBuffer_Release(&first);
    return out;
}

static PyMethodDef methods[] = {
    {"followed", followed, METH_VARARGS, "Whether a lead byte is followed by a marked byte."},
    {"canonical", canonical, METH_VARARGS, "Fold and drop separator bytes."},
    {"runs", runs, METH_VARARGS, "Maximal runs of marked bytes at least min_len long."},
    {"entropy", entropy, METH_VARARGS, "Shannon entropy of the bytes, in bits per byte."},
    {"words", words, METH_VARARGS, "Stretches of short lowercase words, such as seed phrases."},
    {"grams", grams, METH_VARARGS, "Places whose 4-gram hashes to a bit set in a table."},
    {"dejunked", dejunked, METH_VARARGS, "Copies with every p-th byte taken out, NUL-joined."},
    {"anchors", anchors, METH_VARARGS, "Where each of several needles occurs, in one pass."},
    {"b64_pieces", b64_pieces, METH_VARARGS, "A base64 run decoded from its first offsets."},
    {"notable", notable, METH_VARARGS, "Which decoded pieces need a look of their own."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "agentcage.policy._native", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__native(void)
{
#ifdef HAVE_SSSE3_CANONICAL
    init_compact();
#endif
#ifdef __SSE2__
    init_marks();
#endif
    init_word_classes();
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    /* Whether `anchors` looks at 16 positions at a time. Its byte loop is slower than
       one vector substring search per needle, which is what callers use then. */
    int vectors = 0;
#ifdef HAVE_SSSE3_ANCHORS
    vectors = __builtin_cpu_supports("ssse3") != 0;
#endif
    if (PyModule_AddIntConstant(m, "ANCHORS_IN_VECTORS", vectors) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
