#include "gateway/route_file.h"

#include <gtest/gtest.h>

namespace slipway::gateway {
namespace {

TEST(RouteFile, ParsesEveryField) {
  auto file = ParseRouteFile(R"(
listen: [127.0.0.1:8081=sandbox-a]
routes:
  - name: web
    hosts: [Web.Test, "*.web.test"]
    path: /api
    priority: 5
    max_body: 1MiB
    health_path: /health
    to: 127.0.0.1:9001
  - name: canary
    app: web
    hosts: [web.test]
    listener: sandbox-a
    when: {header: {X-Slipway-Sandbox: qa}, baggage: {sandbox: qa}, cookie: {ab: b}}
    sticky: {cookie: slipway_web}
    sides:
      - {name: stable, weight: 90, to: 127.0.0.1:9001}
      - {name: canary, weight: 10, to: ["127.0.0.1:9002", "[::1]:9003"]}
)",
                             "routes.yaml");
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_EQ(file->routes.size(), 2u);
  ASSERT_EQ(file->listen.size(), 1u);
  EXPECT_EQ(file->listen[0].port, 8081);
  EXPECT_EQ(file->listen[0].set, "sandbox-a");
  const Route& web = file->routes[0];
  EXPECT_EQ(web.app, "web");
  EXPECT_EQ(web.path_prefix, "/api");
  EXPECT_EQ(web.priority, 5);
  EXPECT_EQ(web.max_body, 1u << 20);
  EXPECT_EQ(web.health_path, "/health");
  ASSERT_TRUE(web.target);
  EXPECT_EQ(web.target->port(), 9001);
  const Route& canary = file->routes[1];
  EXPECT_EQ(canary.app, "web");
  EXPECT_EQ(canary.listener, "sandbox-a");
  EXPECT_EQ(canary.when.size(), 3u);
  EXPECT_EQ(canary.sticky, Sticky::kCookie);
  ASSERT_EQ(canary.sides.size(), 2u);
  EXPECT_EQ(canary.sides[1].weight, 10u);
  EXPECT_EQ(canary.sides[1].targets[1]->host(), "::1");
}

void ExpectError(const std::string& text, const std::string& where, const std::string& what) {
  auto file = ParseRouteFile(text, "r.yaml");
  ASSERT_FALSE(file.ok()) << text;
  EXPECT_EQ(file.status().message().rfind(where, 0), 0u) << file.status().message();
  EXPECT_NE(file.status().message().find(what), std::string::npos) << file.status().message();
}

TEST(RouteFile, RefusesMistakesWithTheirPlace) {
  ExpectError("routes:\n  - name: a\n    hosts: [a.test]\n", "r.yaml:2:5", "to or sides");
  ExpectError("routes:\n  - name: a\n    hosts: [a.test]\n    to: localhost:80\n", "r.yaml:4:9",
              "HOST:PORT");
  ExpectError("routes:\n  - name: a\n    hosts: [a.test]\n    to: 127.0.0.1:99999\n", "r.yaml:4",
              "HOST:PORT");
  ExpectError("routes:\n  - name: a\n    hosts: ['a b']\n    to: 127.0.0.1:1\n", "r.yaml:3",
              "not a host name");
  ExpectError("routes:\n  - name: a\n    hosts: [a]\n    to: 127.0.0.1:1\n    colour: red\n",
              "r.yaml:5:5", "unknown key");
  ExpectError(
      "routes:\n  - {name: a, hosts: [a], to: 127.0.0.1:1}\n  - {name: a, hosts: [b], to: "
      "127.0.0.1:2}\n",
      "r.yaml:3", "used twice");
  ExpectError("routes:\n  - {name: a, hosts: [a], to: 127.0.0.1:1, max_body: -1}\n", "r.yaml:2",
              "max_body");
  ExpectError("routes:\n  - {name: a, hosts: [a], to: 127.0.0.1:1, sticky: {cookie: x}}\n",
              "r.yaml:2", "needs sides");
  ExpectError("routes: [\n", "r.yaml:", "");
  ExpectError(
      "routes:\n  - name: a\n    hosts: [a]\n    sides: [{name: \"x\\r\\nSet-Cookie: y\", to: "
      "127.0.0.1:1}]\n",
      "r.yaml:4", "letters, digits");
  ExpectError("routes:\n  - {name: 'a\"b', hosts: [a], to: 127.0.0.1:1}\n", "r.yaml:2", "letters");
  ExpectError("routes:\n  - name: a\n    hosts: [a]\n    to: 127.0.0.1:1\n    name: b\n",
              "r.yaml:5:5", "given twice");
}

TEST(RouteFile, AliasBombIsBounded) {
  std::string text = "a: &a [x,x,x,x,x,x,x,x,x,x]\n";
  for (char c = 'b'; c <= 'i'; ++c)
    text += std::string(1, c) + ": &" + c + " [*" + static_cast<char>(c - 1) + ",*" +
            static_cast<char>(c - 1) + ",*" + static_cast<char>(c - 1) + ",*" +
            static_cast<char>(c - 1) + ",*" + static_cast<char>(c - 1) + ",*" +
            static_cast<char>(c - 1) + ",*" + static_cast<char>(c - 1) + ",*" +
            static_cast<char>(c - 1) + ",*" + static_cast<char>(c - 1) + ",*" +
            static_cast<char>(c - 1) + "]\n";
  text += "routes:\n  - {name: a, hosts: *i, to: 127.0.0.1:1}\n";
  auto file = ParseRouteFile(text, "bomb.yaml");
  EXPECT_FALSE(file.ok()) << "an alias tree of 10^9 nodes must be refused";
}

TEST(ListenFlag, ParsesAddressesAndSets) {
  ListenOn on;
  ASSERT_TRUE(ParseListen("0.0.0.0:80", on));
  EXPECT_EQ(on.port, 80);
  EXPECT_EQ(on.set, "");
  ASSERT_TRUE(ParseListen("[::1]:8081=qa", on));
  EXPECT_EQ(on.address, "::1");
  EXPECT_EQ(on.set, "qa");
  EXPECT_FALSE(ParseListen("localhost:80", on));
  EXPECT_FALSE(ParseListen("1.2.3.4:", on));
  EXPECT_FALSE(ParseListen("1.2.3.4:80=", on));
  EXPECT_FALSE(ParseListen("1.2.3.4:-1", on));
}

}  // namespace
}  // namespace slipway::gateway
