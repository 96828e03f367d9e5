#include "docker/client.h"

#include <gtest/gtest.h>

namespace slipway::docker {
namespace {

std::string Frame(char stream, const std::string& payload) {
  std::string h(8, '\0');
  h[0] = stream;
  h[4] = static_cast<char>((payload.size() >> 24) & 0xff);
  h[5] = static_cast<char>((payload.size() >> 16) & 0xff);
  h[6] = static_cast<char>((payload.size() >> 8) & 0xff);
  h[7] = static_cast<char>(payload.size() & 0xff);
  return h + payload;
}

TEST(DemuxLogs, SplitsFramedStdoutAndStderrIntoLines) {
  std::string raw =
      Frame(1, "hello v1 listening\n") + Frame(2, "warn: a\nwarn: b\n") + Frame(1, "tail");
  EXPECT_EQ(DemuxLogs(raw),
            (std::vector<std::string>{"hello v1 listening", "warn: a", "warn: b", "tail"}));
}

TEST(DemuxLogs, PassesUnframedTtyOutputThrough) {
  EXPECT_EQ(DemuxLogs("plain\ntext\n"), (std::vector<std::string>{"plain", "text"}));
  EXPECT_TRUE(DemuxLogs("").empty());
}

TEST(DemuxLogs, StopsAtATruncatedFrame) {
  std::string raw = Frame(1, "whole\n") + Frame(1, "cut short").substr(0, 10);
  EXPECT_EQ(DemuxLogs(raw).front(), "whole");
}

}  // namespace
}  // namespace slipway::docker
