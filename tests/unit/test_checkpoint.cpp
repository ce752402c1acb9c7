// Checkpoint files and the state-dir lock, on a real temporary directory.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "checkpoint.h"
#include "percent_encode.h"

namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/hdb-checkpoint-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("a checkpoint survives a write and a read; a missing one is nullopt") {
  TempDir tmp;
  hdb::StateDir dir((tmp.path / "state").string());
  std::string file = dir.fileFor("local", "dev", "animals");
  CHECK_FALSE(hdb::readCheckpoint(file).has_value());
  CHECK(hdb::writeCheckpoint(file, "1795693388920.1797") == "");
  CHECK(hdb::readCheckpoint(file).value() == "1795693388920.1797");
  CHECK(hdb::writeCheckpoint(file, "1795693388999.5") == "");
  CHECK(hdb::readCheckpoint(file).value() == "1795693388999.5");
  CHECK_FALSE(fs::exists(file + ".tmp"));
}

TEST_CASE("a corrupt checkpoint is an error, not a silent restart") {
  TempDir tmp;
  hdb::StateDir dir(tmp.path.string());
  std::string file = dir.fileFor("s", "d", "t");
  std::ofstream(file) << "garbage\n";
  CHECK_THROWS_WITH_AS(hdb::readCheckpoint(file), doctest::Contains("not a cursor"), std::runtime_error);
}

TEST_CASE("file names cannot escape the state dir") {
  TempDir tmp;
  hdb::StateDir dir(tmp.path.string());
  std::string file = dir.fileFor("../x", "a/b", ".hidden");
  CHECK(fs::path(file).parent_path() == tmp.path);
  CHECK(fs::path(file).filename().string().find('/') == std::string::npos);
  CHECK(fs::path(file).filename().string()[0] != '.');
}

TEST_CASE("percent-encoding for URL paths and file names") {
  using hdb::Escape;
  CHECK(hdb::percentEncode("a-b_c.d~e", Escape::UrlPath) == "a-b_c.d~e");
  CHECK(hdb::percentEncode("a-b_c.d~e", Escape::FileName) == "a-b_c.d%7Ee");
  CHECK(hdb::percentEncode("../x y", Escape::UrlPath) == "..%2Fx%20y");
  CHECK(hdb::percentEncode("../x y", Escape::FileName) == "%2E.%2Fx%20y");
  CHECK(hdb::percentEncode("\xc3\xa9", Escape::UrlPath) == "%C3%A9");
  CHECK(hdb::percentEncode("", Escape::FileName).empty());
}

TEST_CASE("cursor syntax") {
  CHECK(hdb::validCursor("1795693388920.1797"));
  CHECK(hdb::validCursor("17"));
  CHECK_FALSE(hdb::validCursor(""));
  CHECK_FALSE(hdb::validCursor("1."));
  CHECK_FALSE(hdb::validCursor(".5"));
  CHECK_FALSE(hdb::validCursor("1.2.3"));
  CHECK_FALSE(hdb::validCursor("-1"));
  CHECK_FALSE(hdb::validCursor("1e5"));
}

TEST_CASE("a second instance on the same state dir is refused, naming the holder") {
  TempDir tmp;
  hdb::StateDir first(tmp.path.string());
  // flock locks belong to the open file description: a child process that
  // opens the directory afresh is what a second instance would be.
  pid_t pid = ::fork();
  if (pid == 0) {
    try {
      hdb::StateDir second(tmp.path.string());
      ::_exit(1);
    } catch (const std::runtime_error& e) {
      std::string what = e.what();
      bool ok = what.find("in use by another hdb-bridge") != std::string::npos &&
                what.find("pid " + std::to_string(::getppid())) != std::string::npos;
      ::_exit(ok ? 0 : 2);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("the book records only what the sinks wrote out, and loads it back") {
  TempDir tmp;
  {
    hdb::StateDir dir(tmp.path.string());
    hdb::CheckpointBook book;
    auto& e = book.add(dir, "local", "dev", "animals", "dev.animals");
    CHECK(e.cursor.empty());
    e.set("12.5");
    CHECK_FALSE(e.dirty);  // handed to the sinks, not yet written out by them
    book.drained();
    CHECK(e.dirty);
    book.flush();
    CHECK_FALSE(e.dirty);
  }
  hdb::StateDir dir(tmp.path.string());
  hdb::CheckpointBook book;
  CHECK(book.add(dir, "local", "dev", "animals", "dev.animals").cursor == "12.5");
}
