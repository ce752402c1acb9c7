#include "notify.h"

#include <systemd/sd-daemon.h>

#include <string>

namespace hdb::notify {

void ready() { sd_notify(0, "READY=1"); }
void stopping() { sd_notify(0, "STOPPING=1"); }
void status(std::string_view text) {
  std::string msg = "STATUS=";
  msg.append(text);
  sd_notify(0, msg.c_str());
}

}  // namespace hdb::notify
