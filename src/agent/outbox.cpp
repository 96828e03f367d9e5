#include "agent/outbox.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace slipway {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kWriteChunk = std::size_t{1} << 20;  // a rewrite's write size

// `what`, with the reason errno gives.
Status Errno(const std::string& what) {
  int e = errno;
  return Unavailable(what + ": " + std::strerror(e));
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Writes `a` then `b` at the end of `fd`, however many calls it takes.
Status WriteAll(int fd, std::string_view a, std::string_view b = {}) {
  iovec iov[2] = {{const_cast<char*>(a.data()), a.size()}, {const_cast<char*>(b.data()), b.size()}};
  iovec* v = iov;
  int n = b.empty() ? 1 : 2;
  while (n > 0) {
    ssize_t w = ::writev(fd, v, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Errno("write");
    auto left = static_cast<std::size_t>(w);
    while (n > 0 && left >= v->iov_len) {
      left -= v->iov_len;
      ++v;
      --n;
    }
    if (n > 0) {
      v->iov_base = static_cast<char*>(v->iov_base) + left;
      v->iov_len -= left;
    }
  }
  return Status::Ok();
}

Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Errno("cannot open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Unavailable("cannot read " + path);
  return std::move(text).str();
}

// The next whole line of `text` from `pos` (without its newline); false at a torn or no line.
bool NextLine(const std::string& text, std::size_t& pos, std::string_view& line) {
  auto nl = text.find('\n', pos);
  if (nl == std::string::npos) return false;
  line = std::string_view(text).substr(pos, nl - pos);
  pos = nl + 1;
  return true;
}

// The op kind and ordinal of a started marker for `op_id`, or kInvalid.
Status ParseStart(std::string_view line, const std::string& op_id, std::string& kind,
                  std::uint64_t& ordinal) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("type", "") != "start" ||
      j.value("op_id", "") != op_id || !j.contains("kind") || !j["kind"].is_string() ||
      !j.contains("n") || !j["n"].is_number_unsigned())
    return Invalid("no whole started marker");
  kind = j["kind"].get<std::string>();
  ordinal = j["n"].get<std::uint64_t>();
  return Status::Ok();
}

}  // namespace

Outbox::Outbox(OutboxOptions options) : options_(std::move(options)) {}

Outbox::~Outbox() {
  for (auto& [id, h] : ops_)
    if (h.fd >= 0) ::close(h.fd);
}

std::string Outbox::PathOf(const std::string& op_id) const {
  return options_.dir.empty() ? "" : options_.dir + "/" + op_id + ".op";
}

void Outbox::Start(const std::string& op_id, const std::string& kind) {
  if (ops_.count(op_id)) return;
  Held& h = ops_[op_id];
  h.ordinal = next_ordinal_++;
  h.start = json{{"type", "start"}, {"op_id", op_id}, {"kind", kind}, {"n", h.ordinal}}.dump();
  if (options_.dir.empty()) return;
  if (!protocol::IsValidId(op_id)) return DiskFailed(op_id, h, Invalid("not a valid op id"));
  std::string path = PathOf(op_id);
  h.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (h.fd < 0) return DiskFailed(op_id, h, Errno("cannot create " + path));
  h.file = true;
  h.writable = true;
  Append(op_id, h, h.start);
}

void Outbox::AddEvent(const std::string& op_id, protocol::EventKind kind, json data,
                      const Sink& sink) {
  auto it = ops_.find(op_id);
  if (it == ops_.end() || it->second.result) return;
  Held& h = it->second;
  if (kind == protocol::EventKind::kOutput && bytes_ > options_.max_bytes) {
    ++h.dropped;  // counted, and reported ahead of the next kept event
    return;
  }
  FlushDropped(op_id, h, sink);
  Keep(op_id, h, kind, std::move(data), sink);
}

void Outbox::SetResult(const protocol::OpResult& result, const Sink& sink) {
  auto it = ops_.find(result.op_id);
  if (it == ops_.end() || it->second.result) return;
  Held& h = it->second;
  FlushDropped(result.op_id, h, sink);
  std::string text = protocol::Encode(result);
  Append(result.op_id, h, text);
  if (h.fd >= 0 && ::fdatasync(h.fd) != 0)
    DiskFailed(result.op_id, h, Errno("cannot sync " + PathOf(result.op_id)));
  if (h.fd >= 0) ::close(h.fd);  // nothing is appended after a result
  h.fd = -1;
  h.result = std::move(text);
  sink(*h.result);
}

void Outbox::Keep(const std::string& op_id, Held& h, protocol::EventKind kind, json data,
                  const Sink& sink) {
  protocol::Event e{op_id, h.next_seq++, kind, std::move(data)};
  std::string text = protocol::Encode(e);
  Append(op_id, h, text);
  bytes_ += text.size();
  h.events.emplace_back(e.seq, std::move(text));
  sink(h.events.back().second);
}

void Outbox::FlushDropped(const std::string& op_id, Held& h, const Sink& sink) {
  if (h.dropped == 0) return;
  json notice = {{"stream", "stderr"},
                 {"text", std::to_string(h.dropped) +
                              " output lines dropped: the control plane was unreachable"}};
  h.dropped = 0;
  Keep(op_id, h, protocol::EventKind::kOutput, std::move(notice), sink);
}

void Outbox::Append(const std::string& op_id, Held& h, const std::string& record) {
  if (!h.writable || h.fd < 0) return;
  if (auto s = WriteAll(h.fd, record, "\n"); !s.ok())
    return DiskFailed(op_id, h, Unavailable(PathOf(op_id) + ": " + s.message()));
  h.file_bytes += record.size() + 1;
}

void Outbox::DiskFailed(const std::string& op_id, Held& h, const Status& why) {
  spdlog::error("outbox: op {} is kept in memory only from now on: {}", op_id, why.message());
  if (h.fd >= 0) {
    if (::ftruncate(h.fd, static_cast<off_t>(h.file_bytes)) != 0)
      spdlog::error("outbox: cannot cut {} back to its last whole record: {}", PathOf(op_id),
                    std::strerror(errno));
    ::close(h.fd);
  }
  h.fd = -1;
  h.writable = false;
  DropStale(h);  // no longer compacted
}

void Outbox::Ack(const protocol::Ack& ack) {
  auto it = ops_.find(ack.op_id);
  if (it == ops_.end()) return;
  Held& h = it->second;
  if (ack.result && h.result) return Forget(ack.op_id);
  while (!h.events.empty() && h.events.front().first <= ack.seq) {
    std::size_t size = h.events.front().second.size();
    bytes_ -= std::min(bytes_, size);
    if (h.writable) {  // still in the file until a rewrite
      h.stale_bytes += size + 1;
      stale_bytes_ += size + 1;
    }
    h.events.pop_front();
  }
  MaybeCompact(ack.op_id, h);
  CapStale();
}

// Keeps the acked events left in all files together under max_bytes / 4, so that a restart
// replays little more than max_bytes: rewrites the file that holds the most of them first.
void Outbox::CapStale() {
  while (stale_bytes_ > options_.max_bytes / 4) {
    auto most = std::max_element(ops_.begin(), ops_.end(), [](const auto& a, const auto& b) {
      return a.second.stale_bytes < b.second.stale_bytes;
    });
    if (most == ops_.end() || most->second.stale_bytes == 0) return;
    if (auto s = Rewrite(most->first, most->second, false); !s.ok())
      DiskFailed(most->first, most->second, s);
  }
}

void Outbox::DropStale(Held& h) {
  stale_bytes_ -= std::min(stale_bytes_, h.stale_bytes);
  h.stale_bytes = 0;
}

// Rewrites the file once its acked events outweigh the rest (and compact_bytes): each byte
// is then rewritten at most once on average.
void Outbox::MaybeCompact(const std::string& op_id, Held& h) {
  if (!h.writable) return;
  std::size_t live = h.file_bytes - std::min(h.file_bytes, h.stale_bytes);
  if (h.stale_bytes < std::max(options_.compact_bytes, live)) return;
  if (auto s = Rewrite(op_id, h, false); !s.ok()) DiskFailed(op_id, h, s);
}

// Writes what `h` holds to `<file>.tmp` and renames it over the file; the new file takes the
// old one's place (open for appending while the op runs). On failure the old file is intact.
Status Outbox::Rewrite(const std::string& op_id, Held& h, bool sync) {
  std::string path = PathOf(op_id);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create " + tmp);
  std::string chunk;
  std::size_t total = 0;
  Status s;
  auto flush = [&] {
    if (s.ok() && !chunk.empty()) s = WriteAll(fd, chunk);
    total += chunk.size();
    chunk.clear();
  };
  auto put = [&](const std::string& record) {
    chunk += record;
    chunk += '\n';
    if (chunk.size() >= kWriteChunk) flush();
  };
  put(h.start);
  for (const auto& [seq, text] : h.events) put(text);
  if (h.result) put(*h.result);
  flush();
  if (s.ok() && sync && ::fdatasync(fd) != 0) s = Errno("cannot sync " + tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Errno("cannot rename " + tmp);
  if (!s.ok()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Unavailable(tmp + ": " + s.message());
  }
  if (h.fd >= 0) ::close(h.fd);
  h.fd = fd;
  if (h.result) {  // nothing is appended after a result
    ::close(fd);
    h.fd = -1;
  }
  h.file = h.writable = true;
  h.file_bytes = total;
  DropStale(h);
  return Status::Ok();
}

void Outbox::Forget(const std::string& op_id) {
  auto it = ops_.find(op_id);
  if (it == ops_.end()) return;
  Held& h = it->second;
  for (const auto& [seq, text] : h.events) bytes_ -= std::min(bytes_, text.size());
  DropStale(h);
  if (h.fd >= 0) ::close(h.fd);
  std::string path = PathOf(op_id);
  if (h.file && ::unlink(path.c_str()) != 0 && errno != ENOENT)
    spdlog::warn("outbox: cannot delete {}: {}", path, std::strerror(errno));
  ops_.erase(it);
}

std::vector<const std::pair<const std::string, Outbox::Held>*> Outbox::Ordered() const {
  std::vector<const std::pair<const std::string, Held>*> out;
  for (const auto& entry : ops_) out.push_back(&entry);
  std::sort(out.begin(), out.end(),
            [](const auto* a, const auto* b) { return a->second.ordinal < b->second.ordinal; });
  return out;
}

void Outbox::Replay(const Sink& sink) const {
  for (const auto* entry : Ordered()) {
    for (const auto& [seq, text] : entry->second.events) sink(text);
    if (entry->second.result) sink(*entry->second.result);
  }
}

std::map<std::string, std::uint64_t> Outbox::LastSeq() const {
  std::map<std::string, std::uint64_t> out;
  for (const auto& [id, h] : ops_)
    if (!h.events.empty()) out[id] = h.events.back().first;
  return out;
}

const std::string* Outbox::ResultOf(const std::string& op_id) const {
  auto it = ops_.find(op_id);
  return it == ops_.end() || !it->second.result ? nullptr : &*it->second.result;
}

// ---- loading ----------------------------------------------------------------------------

Result<std::vector<RestoredOp>> Outbox::Load() {
  std::vector<RestoredOp> restored;
  if (options_.dir.empty()) return restored;
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  std::vector<std::string> ids;
  std::vector<fs::path> leftovers;  // rewrites a crash interrupted
  for (fs::directory_iterator it(options_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (EndsWith(name, ".op.tmp")) leftovers.push_back(it->path());
    if (!EndsWith(name, ".op")) continue;
    std::string id = name.substr(0, name.size() - 3);
    if (protocol::IsValidId(id)) ids.push_back(std::move(id));
  }
  if (ec) {
    auto s = Unavailable("cannot read the outbox " + options_.dir + ": " + ec.message());
    options_.dir.clear();
    return s;
  }
  for (const auto& p : leftovers) fs::remove(p, ec);
  for (const auto& id : ids) {
    if (auto r = Restore(id)) restored.push_back(std::move(*r));
  }
  std::sort(restored.begin(), restored.end(), [this](const auto& a, const auto& b) {
    return ops_.at(a.op_id).ordinal < ops_.at(b.op_id).ordinal;
  });
  return restored;
}

// Takes in one op file; an op without a result gets the interrupted one, written back.
// Nothing when the file is not usable.
std::optional<RestoredOp> Outbox::Restore(const std::string& op_id) {
  RestoredOp r{op_id, "", {}, false};
  bool rewrite = false;
  auto loaded = LoadFile(op_id, r, rewrite);
  if (!loaded.ok()) {
    spdlog::warn("outbox: {}: {}", PathOf(op_id), loaded.status().message());
    std::error_code ec;
    if (loaded.status().code() == Code::kInvalid) fs::remove(PathOf(op_id), ec);
    return std::nullopt;
  }
  Held& h = ops_[op_id] = std::move(*loaded);
  h.file = h.writable = true;
  if (!h.result) {
    r.interrupted = true;
    r.result = {op_id, false, kInterruptedError, {{"code", "interrupted"}}};
    h.result = protocol::Encode(r.result);
    rewrite = true;
  }
  for (const auto& [seq, text] : h.events) bytes_ += text.size();
  next_ordinal_ = std::max(next_ordinal_, h.ordinal + 1);
  if (rewrite) {
    if (auto s = Rewrite(op_id, h, true); !s.ok()) DiskFailed(op_id, h, s);
  }
  return r;
}

// The records of one file: its started marker, then a dense run of events, then perhaps its
// result. `rewrite` is set when the file holds more than that (a torn or stray tail).
Result<Outbox::Held> Outbox::LoadFile(const std::string& op_id, RestoredOp& restored,
                                      bool& rewrite) const {
  auto text = ReadWhole(PathOf(op_id));
  if (!text.ok()) return text.status();
  Held h;
  std::size_t pos = 0;
  std::string_view line;
  if (!NextLine(*text, pos, line)) return Invalid("no whole started marker");
  if (auto s = ParseStart(line, op_id, restored.kind, h.ordinal); !s.ok()) return s;
  h.start = std::string(line);
  std::size_t good = pos;
  while (!h.result && NextLine(*text, pos, line)) {
    auto frame = protocol::Decode(line);
    if (!frame.ok()) break;
    if (const auto* e = std::get_if<protocol::Event>(&*frame)) {
      if (e->op_id != op_id || (!h.events.empty() && e->seq != h.events.back().first + 1)) break;
      h.events.emplace_back(e->seq, std::string(line));
    } else if (const auto* r = std::get_if<protocol::OpResult>(&*frame)) {
      if (r->op_id != op_id) break;
      h.result = std::string(line);
      restored.result = *r;
    } else {
      break;
    }
    good = pos;
  }
  h.next_seq = h.events.empty() ? 1 : h.events.back().first + 1;
  h.file_bytes = good;
  rewrite = good != text->size();
  if (rewrite)
    spdlog::warn("outbox: {}: ignoring {} bytes after its last whole record", PathOf(op_id),
                 text->size() - good);
  return h;
}

}  // namespace slipway
