/* hello: the example app Slipway deploys in its tour and its tests.
 *
 * A small HTTP/1.1 server (keep-alive, one thread per connection) on 127.0.0.1:$PORT.
 *   GET /        -> "hello from <version>"
 *   GET /health  -> {"status":"ok","version":"<version>"}
 * The version is read from the VERSION file in the working directory at start.
 * Knobs for exercising the deploy pipeline:
 *   HEALTH_FAIL=1            /health answers 500 from the start
 *   HEALTH_FAIL_AFTER_MS=N   /health answers 500 once N ms have passed since start
 *   CRASH=1                  exits with status 3 at start
 *   BIND=0.0.0.0             listen address (default $HOST, which slipway sets, else
 *                            127.0.0.1; containers need 0.0.0.0)
 *   ERROR_EVERY=N            every Nth request to a path other than /health answers 500
 *                            (counted across connections; 0 or unset = never)
 *   EXTRA_LATENCY_MS=N       sleeps N ms (0..10000) before answering a path other than
 *                            /health; /health stays fast so deploy verification passes
 *   ./server --self-test     runs the app's own checks and exits (0 = pass)
 *   ./server --probe         GET /health on 127.0.0.1:$PORT, exit 0 when 2xx (a container
 *                            HEALTHCHECK for images without a shell or curl)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char version[64] = "unknown";
/* Which instance answered (SLIPWAY_INSTANCE_ID), for telling nodes apart behind a pool. */
static char instance[32] = "-";
static long long started_ms;
static long long fail_after_ms = -1;
static int health_fail;
static unsigned long error_every;     /* ERROR_EVERY: 0 = never */
static long extra_latency_ms;         /* EXTRA_LATENCY_MS */
static atomic_ulong answered;         /* requests to paths other than /health */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void load_version(void) {
  FILE *f = fopen("VERSION", "r");
  if (!f) return;
  if (fgets(version, sizeof version, f)) version[strcspn(version, "\r\n")] = 0;
  fclose(f);
}

static int healthy(void) {
  if (health_fail) return 0;
  if (fail_after_ms >= 0 && now_ms() - started_ms >= fail_after_ms) return 0;
  return 1;
}

/* A whole number from lo to hi in environment variable `name`, else `fallback` when unset;
 * -1 (with a message) when set to anything else. */
static long env_number(const char *name, long lo, long hi, long fallback) {
  const char *v = getenv(name);
  if (!v || !*v) return fallback;
  char *end = NULL;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || *end || n < lo || n > hi) {
    fprintf(stderr, "hello: %s=%s is not a whole number from %ld to %ld\n", name, v, lo, hi);
    return -1;
  }
  return n;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n <= 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static int respond(int fd, int status, const char *type, const char *body, int keep_alive) {
  char head[320];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nX-Version: %s\r\n"
                   "X-Instance: %s\r\n%s\r\n",
                   status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Internal Server Error", type,
                   strlen(body), version, instance, keep_alive ? "" : "Connection: close\r\n");
  if (write_all(fd, head, (size_t)n) < 0) return -1;
  return write_all(fd, body, strlen(body));
}

static void *serve(void *arg) {
  int fd = (int)(long)arg;
  char buf[16384];
  size_t have = 0;
  for (;;) {
    char *end = NULL;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
      if (have == sizeof buf) goto done;
      ssize_t n = read(fd, buf + have, sizeof buf - have);
      if (n <= 0) goto done;
      have += (size_t)n;
    }
    size_t head_len = (size_t)(end - buf) + 4;
    char method[16] = {0}, path[1024] = {0}, proto[16] = {0};
    sscanf(buf, "%15s %1023s %15s", method, path, proto);
    int keep_alive = strcmp(proto, "HTTP/1.0") != 0;
    size_t content_length = 0;
    for (char *line = strstr(buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
      if (!strncasecmp(line + 2, "Connection: close", 17)) keep_alive = 0;
      if (!strncasecmp(line + 2, "Connection: keep-alive", 22)) keep_alive = 1;
      if (!strncasecmp(line + 2, "Content-Length:", 15)) content_length = strtoul(line + 17, NULL, 10);
    }
    /* Discard any request body. */
    size_t consumed = head_len + content_length;
    while (have < consumed) {
      char sink[4096];
      size_t want = consumed - have < sizeof sink ? consumed - have : sizeof sink;
      ssize_t n = read(fd, sink, want);
      if (n <= 0) goto done;
      consumed -= (size_t)n;
    }
    memmove(buf, buf + consumed, have - consumed);
    have -= consumed;

    char body[256];
    int rc;
    if (!strcmp(path, "/health")) {
      int ok = healthy();
      snprintf(body, sizeof body, "{\"status\":\"%s\",\"version\":\"%s\"}\n", ok ? "ok" : "failing", version);
      rc = respond(fd, ok ? 200 : 500, "application/json", body, keep_alive);
    } else {
      /* The knobs apply to every path but /health: the Nth such request fails, each waits. */
      int fail = error_every > 0 && (atomic_fetch_add(&answered, 1) + 1) % error_every == 0;
      if (extra_latency_ms > 0) sleep_ms(extra_latency_ms);
      if (fail) {
        snprintf(body, sizeof body, "error from %s (ERROR_EVERY=%lu)\n", version, error_every);
        rc = respond(fd, 500, "text/plain", body, keep_alive);
      } else if (!strcmp(path, "/") || !strncmp(path, "/?", 2)) {
        snprintf(body, sizeof body, "hello from %s\n", version);
        rc = respond(fd, 200, "text/plain", body, keep_alive);
      } else {
        rc = respond(fd, 404, "text/plain", "not found\n", keep_alive);
      }
    }
    if (rc < 0 || !keep_alive) break;
  }
done:
  close(fd);
  return NULL;
}

static int probe(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return 1;
  const char *req = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  if (write_all(fd, req, strlen(req)) < 0) return 1;
  char buf[64] = {0};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 12 && !strncmp(buf + 9, "2", 1) ? 0 : 1;
}

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

int main(int argc, char **argv) {
  load_version();
  if (argc > 1 && !strcmp(argv[1], "--self-test")) {
    if (!strcmp(version, "unknown")) {
      fprintf(stderr, "self-test: VERSION file missing\n");
      return 1;
    }
    printf("self-test: version %s ok\n", version);
    return 0;
  }
  if (getenv("CRASH") && !strcmp(getenv("CRASH"), "1")) {
    fprintf(stderr, "hello %s: crashing on purpose (CRASH=1)\n", version);
    return 3;
  }
  if (getenv("SLIPWAY_INSTANCE_ID")) snprintf(instance, sizeof instance, "%.31s", getenv("SLIPWAY_INSTANCE_ID"));
  const char *port_env = getenv("PORT");
  const char *bind_env = getenv("BIND") ? getenv("BIND") : getenv("HOST");
  if (argc > 1 && !strcmp(argv[1], "--probe")) return probe(port_env ? atoi(port_env) : 8000);
  int port = port_env ? atoi(port_env) : 8000;
  health_fail = getenv("HEALTH_FAIL") && !strcmp(getenv("HEALTH_FAIL"), "1");
  if (getenv("HEALTH_FAIL_AFTER_MS")) fail_after_ms = atoll(getenv("HEALTH_FAIL_AFTER_MS"));
  long every = env_number("ERROR_EVERY", 0, 1000000000L, 0);
  extra_latency_ms = env_number("EXTRA_LATENCY_MS", 0, 10000, 0);
  if (every < 0 || extra_latency_ms < 0) return 1;
  error_every = (unsigned long)every;
  started_ms = now_ms();
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_term);

  int srv = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind_env && inet_pton(AF_INET, bind_env, &addr.sin_addr) != 1) {
    fprintf(stderr, "hello: BIND=%s is not an IPv4 address\n", bind_env);
    return 1;
  }
  if (bind(srv, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(srv, 512) < 0) {
    perror("hello: listen");
    return 1;
  }
  printf("hello %s listening on %s:%d\n", version, bind_env ? bind_env : "127.0.0.1", port);
  fflush(stdout);
  for (;;) {
    int fd = accept(srv, NULL, NULL);
    if (fd < 0) continue;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&t, &attr, serve, (void *)(long)fd) != 0) close(fd);
    pthread_attr_destroy(&attr);
  }
}
