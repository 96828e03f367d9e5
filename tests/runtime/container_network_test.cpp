// ContainerRuntime's sandbox networks against a real dockerd (started here when none answers,
// and stopped again, as tests/e2e/dockerd.py does): containers of one network reach each
// other by alias, a container of another network can neither resolve nor reach them, the
// published port works beside the network, and the network goes with its last container.
// Images are built FROM scratch with busybox-static (no registry is reachable). Skipped when
// dockerd or /bin/busybox is missing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "docker/client.h"
#include "net/http_client.h"
#include "runtime/runtime.h"

namespace slipway {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kBusybox = "/bin/busybox";
constexpr const char* kDockerd = "/usr/sbin/dockerd";

bool DaemonAnswers() {
  auto client = docker::Client::Connect();
  return client.ok() && client->Ping().ok();
}

// The daemon this test started (0 when one already answered).
pid_t g_dockerd = 0;

bool StartDockerd() {
  if (DaemonAnswers()) return true;
  if (access(kDockerd, X_OK) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    int log = open("/tmp/slipway-test-dockerd.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    execl(kDockerd, "dockerd", "--host", "unix:///var/run/docker.sock", nullptr);
    _exit(127);
  }
  if (pid < 0) return false;
  g_dockerd = pid;
  for (int i = 0; i < 300; ++i) {
    if (DaemonAnswers()) return true;
    if (waitpid(pid, nullptr, WNOHANG) == pid) break;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

void StopDockerd() {
  if (g_dockerd <= 0) return;
  kill(g_dockerd, SIGTERM);
  for (int i = 0; i < 300 && waitpid(g_dockerd, nullptr, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(100ms);
  kill(g_dockerd, SIGKILL);
  waitpid(g_dockerd, nullptr, 0);
  g_dockerd = 0;
}

std::string Get(int port, const std::string& path) {
  net::Endpoint ep;
  ep.port = port;
  net::ClientRequest req;
  req.target = path;
  req.timeout = 2s;
  auto r = net::HttpCall(ep, req);
  return r.ok() && r->status == 200 ? r->body : "";
}

// What the container on `port` serves at `path`, once it serves it (up to 40 s).
std::string WaitFor(int port, const std::string& path) {
  for (int i = 0; i < 200; ++i) {
    if (auto body = Get(port, path); !body.empty()) return body;
    std::this_thread::sleep_for(200ms);
  }
  return "";
}

class ContainerNetworkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access(kBusybox, X_OK) != 0) return;
    up_ = StartDockerd();
    if (up_) image_ok_ = BuildImage().ok();
  }
  static void TearDownTestSuite() {
    if (auto client = docker::Client::Connect(); client.ok() && image_ok_)
      (void)client->RemoveImage(Image());
    StopDockerd();
  }

  void SetUp() override {
    if (access(kBusybox, X_OK) != 0) GTEST_SKIP() << kBusybox << " is missing (busybox-static)";
    if (!up_) GTEST_SKIP() << "no Docker daemon, and none could be started";
    ASSERT_TRUE(image_ok_) << "the busybox image did not build";
    auto client = docker::Client::Connect();
    ASSERT_TRUE(client.ok());
    client_.emplace(*client);
  }

  void TearDown() override {
    if (!client_) return;
    if (auto list = client_->ListContainers("slipway.test=" + Id()); list.ok()) {
      for (const auto& c : *list) (void)client_->RemoveContainer(c.id);
    }
    for (const auto& n : {Net("a"), Net("b"), Net("race")}) (void)client_->RemoveNetwork(n);
  }

  static std::string Id() { return std::to_string(getpid()); }
  static std::string Image() { return "slipway-nettest:" + Id(); }
  static std::string Net(const std::string& which) {
    return "slipway-nettest-" + which + "-" + Id();
  }

  static Status BuildImage() {
    auto client = docker::Client::Connect();
    if (!client.ok()) return client.status();
    fs::path dir = fs::temp_directory_path() / ("slipway-nettest-" + Id());
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::copy_file(kBusybox, dir / "busybox");
    std::ofstream(dir / "Dockerfile")
        << "FROM scratch\n"
           "COPY busybox /bin/busybox\n"
           "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
           "RUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/www\", \"/tmp\"]\n";
    Status s = client->BuildImage(dir.string(), "Dockerfile", Image(), [](const std::string&) {});
    fs::remove_all(dir);
    return s;
  }

  // A container of `network` (may be "") answering to `aliases`, serving /www on its
  // published port after `before` ran.
  InstanceSpec Spec(const std::string& name, const std::string& network,
                    std::vector<std::string> aliases, const std::string& before) {
    InstanceSpec spec;
    spec.runtime = "container";
    spec.app = "nettest";
    spec.port = AllocatePort().value();
    spec.command = before + "; exec httpd -f -p 8080 -h /www";
    spec.container.image = Image();
    spec.container.name = "slipway-nettest-" + name + "-" + Id();
    spec.container.network = network;
    spec.container.aliases = std::move(aliases);
    spec.container.memory_bytes = 32 << 20;
    spec.container.labels = {{"slipway.test", Id()}};
    return spec;
  }

  InstanceHandle Start(const InstanceSpec& spec) {
    auto h = runtime_.Start(spec);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : InstanceHandle{};
  }

  bool NetworkExists(const std::string& name) {
    return client_->Call("GET", "/networks/" + name).ok();
  }

  std::string IpOn(const InstanceHandle& h, const std::string& network) {
    auto info = client_->Call("GET", "/containers/" + h.container_id + "/json");
    if (!info.ok()) return "";
    return (*info)["NetworkSettings"]["Networks"][network].value("IPAddress", "");
  }

  static inline bool up_ = false;
  static inline bool image_ok_ = false;
  std::optional<docker::Client> client_;
  ContainerRuntime runtime_;
};

TEST_F(ContainerNetworkTest, ContainersOfOneNetworkReachEachOtherByAliasAndNoOneElseDoes) {
  const std::string net = Net("a"), other = Net("b");
  auto alpha =
      Start(Spec("alpha", net, {"alpha", "alpha.sandbox"}, "echo I am alpha > /www/index.html"));
  // The published port works on a user-defined network too.
  EXPECT_EQ(WaitFor(alpha.port, "/"), "I am alpha\n");
  ASSERT_TRUE(NetworkExists(net));
  auto info = client_->Call("GET", "/networks/" + net);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ((*info)["Labels"].value("slipway.sandbox", ""), net);
  EXPECT_EQ((*info).value("Driver", ""), "bridge");

  // Busybox's wget crashes resolving names in a scratch image (static glibc, no NSS): the
  // containers fetch with nc, and print "[body]" ("[]" when nothing came back).
  const std::string fetch =
      "fetch() { printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 \"$1\" 8080 2>/dev/null | "
      "tail -n 1; }; ";
  std::string alpha_ip = IpOn(alpha, net);
  ASSERT_FALSE(alpha_ip.empty());
  auto beta = Start(Spec("beta", net, {"beta"},
                         fetch +
                             "for i in $(seq 50); do p=$(fetch alpha); [ -n \"$p\" ] && break; "
                             "sleep 0.2; done; echo \"[$p]\" >/www/peer; "
                             "echo \"[$(fetch alpha.sandbox)]\" >/www/peer2; "
                             "echo \"[$(fetch " +
                             alpha_ip + ")]\" >/www/peerip"));
  EXPECT_EQ(WaitFor(beta.port, "/peer"), "[I am alpha]\n");
  EXPECT_EQ(Get(beta.port, "/peer2"), "[I am alpha]\n");
  EXPECT_EQ(Get(beta.port, "/peerip"), "[I am alpha]\n");

  auto gamma = Start(
      Spec("gamma", other, {"gamma"},
           fetch +
               "if nslookup gamma >/dev/null 2>&1; then echo resolved; else echo unresolved; fi "
               ">/www/self; if nslookup alpha >/dev/null 2>&1; then echo resolved; else echo "
               "unresolved; fi >/www/dns; echo \"[$(fetch alpha)]\" >/www/byname; "
               "echo \"[$(fetch " +
               alpha_ip + ")]\" >/www/reach"));
  EXPECT_EQ(WaitFor(gamma.port, "/self"), "resolved\n") << "DNS works on the other network";
  EXPECT_EQ(Get(gamma.port, "/dns"), "unresolved\n");
  EXPECT_EQ(Get(gamma.port, "/byname"), "[]\n");
  EXPECT_EQ(Get(gamma.port, "/reach"), "[]\n");

  // The network stays while a container is on it and goes with the last one.
  runtime_.Stop(alpha, 2s);
  EXPECT_FALSE(runtime_.IsRunning(alpha));
  EXPECT_TRUE(NetworkExists(net));
  runtime_.Stop(beta, 2s);
  EXPECT_FALSE(NetworkExists(net));
  EXPECT_TRUE(NetworkExists(other));
  runtime_.Stop(gamma, 2s);
  EXPECT_FALSE(NetworkExists(other));

  // It comes back with the next start.
  auto again = Start(Spec("alpha", net, {"alpha"}, "echo again > /www/index.html"));
  EXPECT_EQ(WaitFor(again.port, "/"), "again\n");
  EXPECT_TRUE(NetworkExists(net));
  runtime_.Stop(again, 2s);
  EXPECT_FALSE(NetworkExists(net));
}

// Starts racing on a network that does not exist yet all get it, and only one is made.
TEST_F(ContainerNetworkTest, ConcurrentStartsShareOneNetwork) {
  const std::string net = Net("race");
  std::vector<InstanceSpec> specs;
  for (int i = 0; i < 3; ++i)
    specs.push_back(Spec("race" + std::to_string(i), net, {},
                         "echo " + std::to_string(i) + " > /www/index.html"));
  std::vector<Result<InstanceHandle>> handles(specs.size(), Unavailable("not started"));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < specs.size(); ++i)
    threads.emplace_back([&, i] { handles[i] = ContainerRuntime().Start(specs[i]); });
  for (auto& t : threads) t.join();
  for (auto& h : handles) ASSERT_TRUE(h.ok()) << h.status().ToString();
  // A create that loses a race with another process is answered 409, which is success too.
  EXPECT_TRUE(client_->EnsureNetwork(net, {{"slipway.sandbox", net}}).ok());
  json filters = {{"name", {net}}};
  auto list = client_->Call("GET", "/networks?filters=" + filters.dump());
  ASSERT_TRUE(list.ok());
  int same_name = 0;
  for (const auto& n : *list) same_name += n.value("Name", "") == net;
  EXPECT_EQ(same_name, 1);
  for (auto& h : handles) runtime_.Stop(*h, 1s);
  EXPECT_FALSE(NetworkExists(net));
}

// Names are checked before Docker is asked anything.
TEST(ContainerNetworkNames, MalformedNetworksAndAliasesAreRefused) {
  ContainerRuntime runtime;
  InstanceSpec spec;
  spec.runtime = "container";
  spec.container.image = "none";
  spec.container.name = "slipway-never";
  for (const std::string& bad :
       std::vector<std::string>{"Upper", "-x", "a b", "a/b", std::string(64, 'a')}) {
    spec.container.network = bad;
    spec.container.aliases = {};
    EXPECT_EQ(runtime.Start(spec).status().code(), Code::kInvalid) << bad;
    spec.container.network = "ok-net";
    spec.container.aliases = {bad};
    EXPECT_EQ(runtime.Start(spec).status().code(), Code::kInvalid) << bad;
  }
  spec.container.network = "";
  spec.container.aliases = {"alias"};
  EXPECT_EQ(runtime.Start(spec).status().code(), Code::kInvalid);
  EXPECT_TRUE(ValidNetworkName("sandbox-feat-1.api_x"));
  EXPECT_FALSE(ValidNetworkName(""));
}

}  // namespace
}  // namespace slipway
