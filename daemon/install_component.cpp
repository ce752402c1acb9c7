#include "install_component.h"

#include <cstdio>
#include <vector>

#include "component_files.h"  // generated: kComponentFiles
#include "envelope.h"
#include "event_loop.h"
#include "http_client.h"
#include "logging.h"

namespace hdb {

namespace {

constexpr const char* kProject = "hdb-bridge";
constexpr uint16_t kDefaultOperationsPort = 9925;

std::string setComponentFile(const char* file, const char* payload) {
  std::string body = "{\"operation\":\"set_component_file\",\"project\":";
  appendJsonString(body, kProject);
  body += ",\"file\":";
  appendJsonString(body, file);
  body += ",\"payload\":";
  appendJsonString(body, payload);
  body += "}";
  return body;
}

// Sends the requests one after the other, stopping at the first failure.
class Installer {
 public:
  Installer(EventLoop& loop, const ServerConfig& server) : loop_(loop), server_(server), url_(operationsUrl(server)) {
    for (const auto& f : kComponentFiles) {
      std::string what = "upload ";  // (operator+ here trips a GCC 12 -Wrestrict false positive)
      what.append(f.name);
      steps_.push_back({std::move(what), setComponentFile(f.name, f.text)});
    }
    steps_.push_back({"restart_service http_workers", R"({"operation":"restart_service","service":"http_workers"})"});
  }

  void next() {
    if (index_ == steps_.size()) {
      std::fprintf(stderr, "hdb-bridge: component '%s' installed on server '%s'; HTTP workers are restarting\n",
                   kProject, server_.name.c_str());
      ok_ = true;
      return loop_.stop();
    }
    const Step& step = steps_[index_];
    std::fprintf(stderr, "hdb-bridge: %s (%s://%s:%u%s)\n", step.what.c_str(), url_.tls ? "https" : "http",
                 url_.host.c_str(), unsigned(url_.port), url_.path.c_str());
    HttpRequest::post(loop_, server_, url_, step.body, [this](const HttpResult& r) {
      if (r.status == 200) {
        ++index_;
        return next();
      }
      if (r.status == 0)
        std::fprintf(stderr, "hdb-bridge: %s failed: %s\n", steps_[index_].what.c_str(), r.error.c_str());
      else
        std::fprintf(stderr, "hdb-bridge: %s failed: HTTP %d: %.500s\n", steps_[index_].what.c_str(), r.status,
                     r.body.c_str());
      loop_.stop();
    });
  }

  bool ok() const { return ok_; }

 private:
  struct Step {
    std::string what;
    std::string body;
  };
  EventLoop& loop_;
  const ServerConfig& server_;
  Url url_;
  std::vector<Step> steps_;
  size_t index_ = 0;
  bool ok_ = false;
};

}  // namespace

Url operationsUrl(const ServerConfig& server) {
  if (server.operationsUrl) return *server.operationsUrl;
  Url url = server.url;
  url.port = kDefaultOperationsPort;
  url.path.assign(1, '/');  // (= "/" trips a GCC 12 -Wrestrict false positive)
  return url;
}

int installComponent(const Config& config, const std::string& serverName) {
  const ServerConfig* server = nullptr;
  if (serverName.empty()) {
    for (const auto& [name, s] : config.servers) {
      if (s.protocol != Protocol::HarperDB4) continue;
      if (server) {
        std::fprintf(stderr, "hdb-bridge: several harperdb4 servers are configured; name one with --server\n");
        return 64;
      }
      server = &s;
    }
  } else if (auto it = config.servers.find(serverName); it != config.servers.end()) {
    server = &it->second;
  }
  if (!server) {
    std::fprintf(stderr, "hdb-bridge: no harperdb4 server %s%s%s in %s\n", serverName.empty() ? "" : "'",
                 serverName.c_str(), serverName.empty() ? "" : "'", config.file.c_str());
    return 64;
  }
  if (server->protocol != Protocol::HarperDB4) {
    std::fprintf(stderr, "hdb-bridge: server '%s' is not harperdb4; the component is for HarperDB 4\n",
                 server->name.c_str());
    return 64;
  }
  setupLogging(LogLevel::Warn);
  EventLoop loop(config, [&loop](int) { loop.stop(); });
  Installer installer(loop, *server);
  installer.next();
  loop.run([] {});
  return installer.ok() ? 0 : 1;
}

}  // namespace hdb
