#pragma once
// A CA and a certificate for "localhost" (only) signed by it, made with the openssl CLI in a
// temporary directory that lives as long as the object: for tests of TLS clients, which must
// verify the server against the CA and refuse it under any other name (127.0.0.1 included).
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace slipway::testing {

class TestCerts {
 public:
  TestCerts() {
    char dir[] = "/tmp/slipway-certs-XXXXXX";
    if (!::mkdtemp(dir)) return;
    dir_ = dir;
    const std::string quiet = " >/dev/null 2>&1";
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string cmd =
        "cd " + dir_ + " && openssl req -x509" + ec +
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=slipway-test-ca"
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign" +
        quiet + " && openssl req" + ec + " -keyout server.key -out server.csr -subj /CN=localhost" +
        quiet +
        " && printf 'subjectAltName=DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ext.cnf"
        " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
        " -out server.pem -days 2 -extfile ext.cnf" +
        quiet;
    ok_ = std::system(cmd.c_str()) == 0;
  }
  ~TestCerts() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  // False when the openssl CLI could not make them (the test should skip).
  bool ok() const { return ok_; }
  // ca.pem, server.pem (the certificate) and server.key (its key).
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
  bool ok_ = false;
};

}  // namespace slipway::testing
