/* svc: one service of the sandbox demo (see README.md here). libc only; builds static.
 *
 * An HTTP/1.1 server on $BIND, else $HOST, else 127.0.0.1, port $PORT (default 8000):
 *   GET /health   200 {"status":"ok"}
 *   GET /         {"service": $SERVICE_NAME, "version": <the VERSION file>,
 *                  "sandbox": <the X-Slipway-Sandbox it received, or "">,
 *                  "calls": {"<name>": <that service's answer to GET />, ...}}
 *                 It calls $<NAME>_URL (NAME upper-cased, '-' as '_') for each name in $CALLS
 *                 (comma-separated), forwarding X-Slipway-Sandbox, baggage and X-Slipway-Trace
 *                 unless DROP_HEADERS=1. A failed call shows {"error": "..."}; the answer is
 *                 then 502.
 *   GET /_routes  routes.conf (lines service=url, '#' comments) as a JSON object, {} when
 *                 there is none. Read at start and again on SIGHUP.
 * Writes its pid to app.pid in its working directory.
 * `svc --get URL` prints the body of one GET and exits 0 when it answered 200 with a JSON
 * object (a probe for containers that have no shell).
 * Bounds: request heads 16 KiB, 256 connections, 8 calls of 2 s and 64 KiB each, 32 routes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { HEAD_MAX = 16384, CALL_MAX = 8, CALL_BYTES = 65536, CALL_MS = 2000, ROUTES_MAX = 32 };
enum { CONNS_MAX = 256, FWD_MAX = 3, VALUE_MAX = 512 };

static const char* forwarded[FWD_MAX] = {"X-Slipway-Sandbox", "baggage", "X-Slipway-Trace"};
static char service[64] = "svc", version[64] = "unknown";
static atomic_int connections;

struct route {
  char name[64], url[256];
};
static struct route routes[ROUTES_MAX];
static int route_count;
static pthread_mutex_t routes_mu = PTHREAD_MUTEX_INITIALIZER;

/* A bounded output buffer: appends past `cap` are dropped and `over` is set. */
struct out {
  char* p;
  size_t len, cap;
  int over;
};

static void put(struct out* o, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= o->cap - o->len)
    o->over = 1;
  else
    o->len += (size_t)n;
}

static void put_str(struct out* o, const char* s) { /* a JSON string */
  put(o, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      put(o, "\\%c", c);
    else if (c < 0x20)
      put(o, "\\u%04x", c);
    else
      put(o, "%c", c);
  }
  put(o, "\"");
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void read_line_file(const char* path, char* dst, size_t cap) {
  FILE* f = fopen(path, "r");
  if (!f) return;
  if (fgets(dst, (int)cap, f)) dst[strcspn(dst, "\r\n")] = 0;
  fclose(f);
}

static char* trim(char* s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = 0;
  return s;
}

static void load_routes(void) {
  struct route fresh[ROUTES_MAX];
  int count = 0;
  FILE* f = fopen("routes.conf", "r");
  char line[512];
  while (f && count < ROUTES_MAX && fgets(line, sizeof line, f)) {
    char* eq = strchr(line, '=');
    if (line[0] == '#' || !eq) continue;
    *eq = 0;
    snprintf(fresh[count].name, sizeof fresh[count].name, "%s", trim(line));
    snprintf(fresh[count].url, sizeof fresh[count].url, "%s", trim(eq + 1));
    count++;
  }
  if (f) fclose(f);
  pthread_mutex_lock(&routes_mu);
  memcpy(routes, fresh, sizeof fresh);
  route_count = count;
  pthread_mutex_unlock(&routes_mu);
}

static void* reload_on_hup(void* arg) { /* SIGHUP is blocked everywhere; this thread takes it */
  sigset_t* set = arg;
  int sig;
  for (;;)
    if (sigwait(set, &sig) == 0) load_routes();
  return NULL;
}

/* ---- the client side: one GET with a deadline ---- */

struct url {
  char host[256], authority[300], path[512];
  int port;
};

static const char* parse_url(const char* s, struct url* u) {
  if (strncmp(s, "http://", 7)) return "only http:// URLs are supported";
  s += 7;
  size_t auth = strcspn(s, "/?#");
  if (auth == 0 || auth >= sizeof u->authority) return "bad host in URL";
  snprintf(u->authority, sizeof u->authority, "%.*s", (int)auth, s);
  snprintf(u->path, sizeof u->path, "%s", s[auth] == '/' ? s + auth : "/");
  char* colon = strchr(u->authority, ':');
  size_t host_len = colon ? (size_t)(colon - u->authority) : auth;
  if (host_len == 0 || host_len >= sizeof u->host) return "bad host in URL";
  snprintf(u->host, sizeof u->host, "%.*s", (int)host_len, u->authority);
  u->port = colon ? atoi(colon + 1) : 80;
  if (u->port < 1 || u->port > 65535) return "bad port in URL";
  return NULL;
}

/* IPv4 literals, localhost and *.localhost here; other names through the resolver. */
static const char* resolve(const char* host, struct in_addr* addr) {
  size_t n = strlen(host);
  if (inet_pton(AF_INET, host, addr) == 1) return NULL;
  if (!strcasecmp(host, "localhost") || (n > 10 && !strcasecmp(host + n - 10, ".localhost"))) {
    addr->s_addr = htonl(INADDR_LOOPBACK);
    return NULL;
  }
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return "cannot resolve host";
  *addr = ((struct sockaddr_in*)res->ai_addr)->sin_addr;
  freeaddrinfo(res);
  return NULL;
}

static int wait_fd(int fd, short events, long long deadline) {
  struct pollfd p = {.fd = fd, .events = events};
  long long left = deadline - now_ms();
  return left > 0 && poll(&p, 1, (int)left) == 1 ? 0 : -1;
}

static const char* connect_by(const struct url* u, long long deadline, int* fd_out) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)u->port)};
  const char* err = resolve(u->host, &sa.sin_addr);
  if (err) return err;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return "no socket";
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (connect(fd, (struct sockaddr*)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
    soerr = errno;
  else if (wait_fd(fd, POLLOUT, deadline) < 0)
    soerr = ETIMEDOUT;
  else
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
  if (soerr) {
    close(fd);
    return soerr == ETIMEDOUT ? "connect timed out" : "connection refused";
  }
  *fd_out = fd;
  return NULL;
}

/* Reads the whole answer (the request said Connection: close) into buf; returns its size. */
static const char* read_answer(int fd, char* buf, size_t cap, long long deadline, size_t* len) {
  *len = 0;
  for (;;) {
    if (*len == cap) return "answer too large";
    if (wait_fd(fd, POLLIN, deadline) < 0) return "timed out";
    ssize_t n = read(fd, buf + *len, cap - *len);
    if (n == 0) return NULL;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return "read failed";
    if (n > 0) *len += (size_t)n;
  }
}

/* The body of a 200 whose body is a JSON object, NUL-terminated inside buf; else an error. */
static const char* parse_answer(char* buf, size_t len, char** body) {
  buf[len] = 0;
  char* end = strstr(buf, "\r\n\r\n");
  if (!end || strncmp(buf, "HTTP/1.", 7) || len < 12) return "malformed answer";
  *end = 0;
  if (strcasestr(buf, "\r\ntransfer-encoding:")) return "chunked answers are not supported";
  char* cl = strcasestr(buf, "\r\ncontent-length:");
  *body = end + 4;
  if (cl) {
    size_t want = strtoul(cl + 17, NULL, 10);
    if (want > strlen(*body)) return "answer cut short";
    (*body)[want] = 0;
  }
  static __thread char status[32];
  snprintf(status, sizeof status, "answered HTTP %.3s", buf + 9);
  if (buf[9] != '2') return status;
  *body = trim(*body);
  return **body == '{' ? NULL : "the answer is not a JSON object";
}

/* GET `url` with headers `extra` (CRLF-terminated lines) within CALL_MS. buf holds
 * CALL_BYTES + 1; on success *body points into it. Returns NULL or a static error. */
static const char* get(const char* url, const char* extra, char* buf, char** body) {
  struct url u;
  const char* err = parse_url(url, &u);
  long long deadline = now_ms() + CALL_MS;
  int fd = -1;
  if (err || (err = connect_by(&u, deadline, &fd))) return err;
  char req[HEAD_MAX];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s\r\n",
                   u.path, u.authority, extra);
  size_t len = 0;
  if (n < 0 || (size_t)n >= sizeof req)
    err = "request too large";
  else if (wait_fd(fd, POLLOUT, deadline) < 0 || write(fd, req, (size_t)n) != n)
    err = "send failed";
  else
    err = read_answer(fd, buf, CALL_BYTES, deadline, &len);
  close(fd);
  return err ? err : parse_answer(buf, len, body);
}

/* ---- the server side ---- */

struct request {
  char method[16], path[1024], proto[16];
  char fwd[FWD_MAX][VALUE_MAX];
  int keep_alive;
};

static int printable(const char* s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 && *s != '\t') return 0;
  return 1;
}

static void parse_head(char* head, struct request* r) {
  memset(r, 0, sizeof *r);
  sscanf(head, "%15s %1023s %15s", r->method, r->path, r->proto);
  r->keep_alive = strcmp(r->proto, "HTTP/1.0") != 0;
  for (char* line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
    char *name = line + 2, *colon = strchr(name, ':'), *eol = strstr(name, "\r\n");
    if (!colon || (eol && colon > eol)) continue;
    size_t name_len = (size_t)(colon - name),
           value_len = eol ? (size_t)(eol - colon - 1) : strlen(colon + 1);
    char value[VALUE_MAX];
    snprintf(value, sizeof value, "%.*s", (int)value_len, colon + 1);
    if (name_len == 10 && !strncasecmp(name, "connection", 10)) {
      if (strcasestr(value, "close")) r->keep_alive = 0;
      if (strcasestr(value, "keep-alive")) r->keep_alive = 1;
    }
    for (int i = 0; i < FWD_MAX && printable(value); i++) /* never a header split in two */
      if (name_len == strlen(forwarded[i]) && !strncasecmp(name, forwarded[i], name_len))
        snprintf(r->fwd[i], VALUE_MAX, "%s", trim(value));
  }
}

static void call_one(const char* name, const char* extra, struct out* o, int* failed, char* buf) {
  char var[80], *body = NULL;
  snprintf(var, sizeof var, "%s_URL", name);
  for (char* c = var; *c; c++) *c = *c == '-' || *c == '.' ? '_' : (char)toupper((unsigned char)*c);
  const char *url = getenv(var), *err = url ? get(url, extra, buf, &body) : "not set";
  put_str(o, name);
  if (!err) {
    put(o, ":%s", body);
    return;
  }
  char msg[400];
  if (url)
    snprintf(msg, sizeof msg, "%s %s: %s", var, url, err);
  else
    snprintf(msg, sizeof msg, "%s is not set", var);
  put(o, ":{\"error\":");
  put_str(o, msg);
  put(o, "}");
  *failed = 1;
}

/* GET / : calls every service in $CALLS. Returns the status. */
static int answer_root(const struct request* r, struct out* o) {
  char extra[FWD_MAX * (VALUE_MAX + 32)] = "", calls[512], *save = NULL;
  const char* drop = getenv("DROP_HEADERS");
  for (int i = 0; i < FWD_MAX && !(drop && !strcmp(drop, "1")); i++)
    if (r->fwd[i][0])
      snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "%s: %s\r\n", forwarded[i],
               r->fwd[i]);
  snprintf(calls, sizeof calls, "%s", getenv("CALLS") ? getenv("CALLS") : "");
  put(o, "{\"service\":");
  put_str(o, service);
  put(o, ",\"version\":");
  put_str(o, version);
  put(o, ",\"sandbox\":");
  put_str(o, r->fwd[0]);
  put(o, ",\"calls\":{");
  char* buf = malloc(CALL_BYTES + 1);
  int failed = 0, count = 0;
  for (char* name = strtok_r(calls, ",", &save); name && buf && count < CALL_MAX;
       name = strtok_r(NULL, ",", &save)) {
    name = trim(name);
    if (!*name) continue;
    if (count++) put(o, ",");
    call_one(name, extra, o, &failed, buf);
  }
  free(buf);
  put(o, "}}\n");
  return failed || !buf || o->over ? 502 : 200;
}

static int answer_routes(struct out* o) {
  pthread_mutex_lock(&routes_mu);
  put(o, "{");
  for (int i = 0; i < route_count; i++) {
    put(o, i ? "," : "");
    put_str(o, routes[i].name);
    put(o, ":");
    put_str(o, routes[i].url);
  }
  pthread_mutex_unlock(&routes_mu);
  put(o, "}\n");
  return 200;
}

static int write_all(int fd, const char* p, size_t len) {
  for (ssize_t n; len > 0; p += n, len -= (size_t)n)
    if ((n = write(fd, p, len)) <= 0) return -1;
  return 0;
}

static int respond(int fd, const struct request* r) {
  struct out o = {.p = malloc(CALL_MAX * (CALL_BYTES + 512) + 4096),
                  .cap = CALL_MAX * (CALL_BYTES + 512) + 4096};
  if (!o.p) return -1;
  int status = 404;
  if (!strcmp(r->path, "/health")) {
    status = 200;
    put(&o, "{\"status\":\"ok\"}\n");
  } else if (!strcmp(r->path, "/") || !strncmp(r->path, "/?", 2))
    status = answer_root(r, &o);
  else if (!strcmp(r->path, "/_routes"))
    status = answer_routes(&o);
  else
    put(&o, "{\"error\":\"not found\"}\n");
  char head[256];
  int n = snprintf(
      head, sizeof head,
      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n", status,
      status == 200   ? "OK"
      : status == 404 ? "Not Found"
                      : "Bad Gateway",
      o.len, r->keep_alive ? "" : "Connection: close\r\n");
  int rc = write_all(fd, head, (size_t)n) < 0 || write_all(fd, o.p, o.len) < 0 ? -1 : 0;
  free(o.p);
  return rc;
}

/* Reads one request head into buf (HEAD_MAX) and skips its body; -1 when the peer is gone. */
static int read_request(int fd, char* buf, size_t* have, struct request* r) {
  char* end;
  while (!(end = memmem(buf, *have, "\r\n\r\n", 4))) {
    ssize_t n = *have < HEAD_MAX - 1 ? read(fd, buf + *have, HEAD_MAX - 1 - *have) : -1;
    if (n <= 0) return -1;
    *have += (size_t)n;
  }
  size_t head_len = (size_t)(end - buf) + 4, body = 0;
  end[2] = 0;
  char* cl = strcasestr(buf, "\r\ncontent-length:");
  if (cl) body = strtoul(cl + 17, NULL, 10);
  parse_head(buf, r);
  if (body > (1 << 20) || strcasestr(buf, "\r\ntransfer-encoding:"))
    return -1;                   /* not for this demo */
  size_t left = head_len + body; /* this request's bytes, some of them in buf */
  while (*have < left) {         /* drop the body as it comes, never reading past it */
    left -= *have;
    ssize_t n = read(fd, buf, left < HEAD_MAX - 1 ? left : HEAD_MAX - 1);
    if (n <= 0) return -1;
    *have = (size_t)n;
  }
  memmove(buf, buf + left, *have - left); /* a pipelined next request stays */
  *have -= left;
  return 0;
}

static void* serve(void* arg) {
  int fd = (int)(long)arg;
  char* buf = malloc(HEAD_MAX);
  size_t have = 0;
  struct request r;
  while (buf && read_request(fd, buf, &have, &r) == 0 && respond(fd, &r) == 0 && r.keep_alive) {
  }
  free(buf);
  close(fd);
  atomic_fetch_sub(&connections, 1);
  return NULL;
}

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

static int listen_on(void) {
  const char* bind_to = getenv("BIND")   ? getenv("BIND")
                        : getenv("HOST") ? getenv("HOST")
                                         : "127.0.0.1";
  int port = getenv("PORT") ? atoi(getenv("PORT")) : 8000, one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (inet_pton(AF_INET, bind_to, &sa.sin_addr) != 1 ||
      bind(fd, (struct sockaddr*)&sa, sizeof sa) < 0 || listen(fd, 256) < 0) {
    fprintf(stderr, "svc: cannot listen on %s:%d: %s\n", bind_to, port, strerror(errno));
    exit(1);
  }
  printf("svc %s %s listening on %s:%d\n", service, version, bind_to, port);
  fflush(stdout);
  return fd;
}

static void spawn(void* (*fn)(void*), void* arg) {
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  if (pthread_create(&t, &attr, fn, arg) != 0 && fn == serve) {
    close((int)(long)arg);
    atomic_fetch_sub(&connections, 1);
  }
  pthread_attr_destroy(&attr);
}

int main(int argc, char** argv) {
  if (argc == 3 && !strcmp(argv[1], "--get")) {
    char *buf = malloc(CALL_BYTES + 1), *body = NULL;
    const char* err = buf ? get(argv[2], "", buf, &body) : "out of memory";
    if (err)
      fprintf(stderr, "svc --get %s: %s\n", argv[2], err);
    else
      printf("%s\n", body);
    return err ? 1 : 0;
  }
  if (getenv("SERVICE_NAME")) snprintf(service, sizeof service, "%s", getenv("SERVICE_NAME"));
  read_line_file("VERSION", version, sizeof version);
  static sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, NULL); /* inherited by every thread made below */
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_term); /* as PID 1 of a container, default actions do nothing */
  signal(SIGINT, on_term);
  load_routes();
  int srv = listen_on();
  FILE* pid = fopen("app.pid", "w");
  if (pid) fprintf(pid, "%d\n", (int)getpid()), fclose(pid);
  spawn(reload_on_hup, &hup);
  struct timeval idle = {.tv_sec = 30};
  for (int one = 1;;) {
    int fd = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (atomic_fetch_add(&connections, 1) >= CONNS_MAX) {
      close(fd);
      atomic_fetch_sub(&connections, 1);
      continue;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle); /* idle keep-alive ends */
    spawn(serve, (void*)(long)fd);
  }
}
