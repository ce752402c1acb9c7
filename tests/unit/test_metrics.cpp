// The pure parts of the operations endpoints: the Prometheus text format
// writer (escaping, values, HELP/TYPE), the HTTP request-line parser and
// response writer, STATUS= text, journald priorities and the metrics: config.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "config.h"
#include "exposition.h"
#include "http_server.h"
#include "logging.h"
#include "status_report.h"

using hdb::Exposition;

TEST_CASE("exposition: label values escape backslash, quote and line feed only") {
  CHECK(hdb::escapeLabelValue("plain") == "plain");
  CHECK(hdb::escapeLabelValue(R"(a\b)") == R"(a\\b)");
  CHECK(hdb::escapeLabelValue(R"(say "hi")") == R"(say \"hi\")");
  CHECK(hdb::escapeLabelValue("two\nlines") == R"(two\nlines)");
  CHECK(hdb::escapeLabelValue("tab\tand\r") == "tab\tand\r");  // left as they are
  CHECK(hdb::escapeLabelValue("\xc3\xa9t\xc3\xa9") == "\xc3\xa9t\xc3\xa9");  // UTF-8 passes
}

TEST_CASE("exposition: HELP text escapes backslash and line feed, not quotes") {
  CHECK(hdb::escapeHelp(R"(a "b" \ c)") == R"(a "b" \\ c)");
  CHECK(hdb::escapeHelp("x\ny") == R"(x\ny)");
}

TEST_CASE("exposition: values") {
  CHECK(hdb::formatValue(0) == "0");
  CHECK(hdb::formatValue(42) == "42");
  CHECK(hdb::formatValue(-3) == "-3");
  CHECK(hdb::formatValue(1764170000.0) == "1764170000");
  CHECK(hdb::formatValue(0.25) == "0.25");
  CHECK(hdb::formatValue(1.5e-6) == "1.5e-06");
  CHECK(hdb::formatValue(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(hdb::formatValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(hdb::formatValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(hdb::formatValue(1764170000.123) == "1764170000.123");  // a Unix time keeps its milliseconds
  CHECK(std::stod(hdb::formatValue(0.1 + 0.2)) == 0.1 + 0.2);      // round-trips
}

TEST_CASE("exposition: a family is HELP, TYPE, then its samples with labels in order") {
  Exposition out;
  out.family("hdb_x_total", Exposition::Type::Counter, "Things \\ counted.\nSecond line.");
  out.sample({{"sink", "a\"b"}, {"reason", "drop_oldest"}}, uint64_t{18446744073709551615u});
  out.sample({}, uint64_t{0});
  out.family("hdb_y", Exposition::Type::Gauge, "A gauge.");
  out.sample(0.5);
  CHECK(out.text() ==
        "# HELP hdb_x_total Things \\\\ counted.\\nSecond line.\n"
        "# TYPE hdb_x_total counter\n"
        "hdb_x_total{sink=\"a\\\"b\",reason=\"drop_oldest\"} 18446744073709551615\n"
        "hdb_x_total 0\n"
        "# HELP hdb_y A gauge.\n"
        "# TYPE hdb_y gauge\n"
        "hdb_y 0.5\n");
}

TEST_CASE("exposition: metric and label names") {
  CHECK(hdb::validMetricName("hdb_bridge_up"));
  CHECK(hdb::validMetricName("a:b_c9"));
  CHECK_FALSE(hdb::validMetricName("9abc"));
  CHECK_FALSE(hdb::validMetricName("a-b"));
  CHECK_FALSE(hdb::validMetricName(""));
  CHECK(hdb::validLabelName("server"));
  CHECK_FALSE(hdb::validLabelName("__reserved"));
  CHECK_FALSE(hdb::validLabelName("a:b"));
}

TEST_CASE("http: request line") {
  std::string method, path;
  CHECK(hdb::parseRequestHead("GET /metrics HTTP/1.1\r\nHost: x", method, path).empty());
  CHECK(method == "GET");
  CHECK(path == "/metrics");
  CHECK(hdb::parseRequestHead("HEAD /readyz?verbose=1 HTTP/1.0", method, path).empty());
  CHECK(method == "HEAD");
  CHECK(path == "/readyz");
  CHECK(hdb::parseRequestHead("POST /metrics HTTP/1.1\n", method, path).empty());
  CHECK(method == "POST");  // parsed; the server answers 405
  CHECK(hdb::parseRequestHead("GET /metrics", method, path) == "no HTTP version");
  CHECK(hdb::parseRequestHead("GET /metrics HTTP/2", method, path) == "not HTTP/1.x");
  CHECK(hdb::parseRequestHead("GET metrics HTTP/1.1", method, path) == "bad target");
  CHECK(hdb::parseRequestHead("GET /a\x01 HTTP/1.1", method, path) == "bad target");
  CHECK(hdb::parseRequestHead(" / HTTP/1.1", method, path) == "no method");
  CHECK(hdb::parseRequestHead("G\"T / HTTP/1.1", method, path) == "bad method");
  CHECK(hdb::parseRequestHead("", method, path) == "no method");
}

TEST_CASE("http: response") {
  hdb::HttpResponse r{503, "text/plain; charset=utf-8", "not ready\n"};
  CHECK(hdb::renderResponse(r, false) ==
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\n\r\nnot ready\n");
  // HEAD: the same headers, Content-Length included, and no body.
  CHECK(hdb::renderResponse(r, true).ends_with("Content-Length: 10\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"));
  hdb::HttpResponse m{405, "text/plain", ""};
  CHECK(hdb::renderResponse(m, false).find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
}

TEST_CASE("STATUS= text") {
  CHECK(hdb::statusText(2, 3, 1, 0) == "2/3 tables up, 1 consumer, 0.0 records/s");
  CHECK(hdb::statusText(3, 3, 4, 12.46) == "3/3 tables up, 4 consumers, 12.5 records/s");
  CHECK(hdb::statusText(3, 3, 4, 12.44) == "3/3 tables up, 4 consumers, 12.4 records/s");
}

TEST_CASE("journald priorities follow syslog") {
  CHECK(hdb::journalPriority(spdlog::level::critical) == 2);
  CHECK(hdb::journalPriority(spdlog::level::err) == 3);
  CHECK(hdb::journalPriority(spdlog::level::warn) == 4);
  CHECK(hdb::journalPriority(spdlog::level::info) == 6);
  CHECK(hdb::journalPriority(spdlog::level::debug) == 7);
  CHECK(hdb::journalPriority(spdlog::level::trace) == 7);
}

namespace {
const char* kBase =
    "servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}\n"
    "tables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n";
}

TEST_CASE("config: metrics") {
  auto cfg = hdb::parseConfig(kBase, "t.yaml").config;
  REQUIRE(cfg);
  CHECK_FALSE(cfg->metrics.has_value());  // off unless asked for

  cfg = hdb::parseConfig(std::string(kBase) + "metrics: {listen: 127.0.0.1:9464}\n", "t.yaml").config;
  REQUIRE(cfg);
  REQUIRE(cfg->metrics.has_value());
  CHECK(cfg->metrics->host == "127.0.0.1");
  CHECK(cfg->metrics->port == 9464);
  CHECK(cfg->metrics->unixPath.empty());

  cfg = hdb::parseConfig(std::string(kBase) + "metrics: {listen: '[::1]:0'}\n", "t.yaml").config;
  REQUIRE(cfg);
  CHECK(cfg->metrics->host == "::1");
  CHECK(cfg->metrics->port == 0);

  cfg = hdb::parseConfig(std::string(kBase) + "metrics: {listen: /run/hdb-bridge/metrics.sock, mode: '0600'}\n",
                         "t.yaml")
            .config;
  REQUIRE(cfg);
  CHECK(cfg->metrics->unixPath == "/run/hdb-bridge/metrics.sock");
  CHECK(cfg->metrics->mode == 0600);
}
