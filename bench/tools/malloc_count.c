// malloc_count: an LD_PRELOAD library that counts heap allocations of the process it is
// loaded into (malloc, calloc, realloc, aligned_alloc, posix_memalign, memalign, valloc;
// C++ operator new reaches malloc through libstdc++). It forwards every call to glibc's
// __libc_* entry points, so it needs no dlsym and works from the first allocation.
//
// Report: one line "malloc_count: allocs=N frees=N reallocs=N bytes=N" written to the file
// named by $MALLOC_COUNT_OUT (appended; stderr when unset) on SIGUSR2 and at exit. Each
// report holds totals since start, so a caller takes one report after startup and one after
// the load and subtracts. Counters are relaxed atomics (threads may allocate concurrently);
// the signal handler only reads them and calls open/write/close (async-signal-safe).
//
// Build: cc -O2 -shared -fPIC -o malloc_count.so bench/tools/malloc_count.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void __libc_free(void*);
extern void* __libc_memalign(size_t, size_t);

static uint64_t g_allocs, g_frees, g_reallocs, g_bytes;
static char g_out[512];  // copied from the environment at load time

static void count(size_t n) {
  __atomic_fetch_add(&g_allocs, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&g_bytes, n, __ATOMIC_RELAXED);
}

void* malloc(size_t n) {
  count(n);
  return __libc_malloc(n);
}
void* calloc(size_t k, size_t n) {
  count(k * n);
  return __libc_calloc(k, n);
}
void* realloc(void* p, size_t n) {
  if (p == NULL) {
    count(n);
  } else {
    __atomic_fetch_add(&g_reallocs, 1, __ATOMIC_RELAXED);
  }
  return __libc_realloc(p, n);
}
void free(void* p) {
  if (p != NULL) __atomic_fetch_add(&g_frees, 1, __ATOMIC_RELAXED);
  __libc_free(p);
}
void* memalign(size_t align, size_t n) {
  count(n);
  return __libc_memalign(align, n);
}
void* aligned_alloc(size_t align, size_t n) {
  return memalign(align, n);
}
int posix_memalign(void** out, size_t align, size_t n) {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  void* p = memalign(align, n);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}
void* valloc(size_t n) {
  return memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

// Decimal without stdio (signal context).
static size_t put_u64(char* at, uint64_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) at[i] = tmp[n - 1 - i];
  return n;
}

static size_t put_str(char* at, const char* s) {
  size_t n = strlen(s);
  memcpy(at, s, n);
  return n;
}

static void report(void) {
  const int saved = errno;
  char line[192];
  size_t n = put_str(line, "malloc_count: allocs=");
  n += put_u64(line + n, __atomic_load_n(&g_allocs, __ATOMIC_RELAXED));
  n += put_str(line + n, " frees=");
  n += put_u64(line + n, __atomic_load_n(&g_frees, __ATOMIC_RELAXED));
  n += put_str(line + n, " reallocs=");
  n += put_u64(line + n, __atomic_load_n(&g_reallocs, __ATOMIC_RELAXED));
  n += put_str(line + n, " bytes=");
  n += put_u64(line + n, __atomic_load_n(&g_bytes, __ATOMIC_RELAXED));
  line[n++] = '\n';
  int fd = 2;
  if (g_out[0] != '\0') fd = open(g_out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ssize_t w = write(fd, line, n);
    (void)w;
    if (fd != 2) close(fd);
  }
  errno = saved;
}

static void on_signal(int sig) {
  (void)sig;
  report();
}

__attribute__((constructor)) static void malloc_count_init(void) {
  const char* out = getenv("MALLOC_COUNT_OUT");
  if (out != NULL && strlen(out) < sizeof g_out) strcpy(g_out, out);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR2, &sa, NULL);
}

__attribute__((destructor)) static void malloc_count_fini(void) {
  report();
}
