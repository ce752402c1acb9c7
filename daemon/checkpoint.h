// Checkpoints: the cursor of the last change every sink wrote out, one file per
// table under state_dir, so a restart resumes where the last run stopped.
// Files are replaced atomically (write, fsync, rename, fsync the directory);
// a lock on the directory keeps a second instance away.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace hdb {

class StateDir {
 public:
  // Creates the directory if missing and takes an exclusive lock on it; throws
  // std::runtime_error naming the directory and, if another process holds the
  // lock, its pid.
  explicit StateDir(std::string path);
  ~StateDir();
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;

  // The checkpoint file of a table; names are escaped so any table name is safe.
  std::string fileFor(const std::string& server, const std::string& database, const std::string& table) const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int lockFd_ = -1;
};

// Reads a checkpoint written by writeCheckpoint; nullopt when the file does not
// exist. A file that exists but cannot be read or parsed throws
// std::runtime_error: silently starting over would skip or repeat changes.
std::optional<std::string> readCheckpoint(const std::string& file);

// Atomically replaces the checkpoint; returns an error text or an empty string.
std::string writeCheckpoint(const std::string& file, const std::string& cursor);

// True when `text` is a cursor we accept: a JSON number (HarperDB 4's localTime).
bool validCursor(const std::string& text);

}  // namespace hdb

namespace hdb {

// The last delivered cursor of every table, written to the state dir now and
// then (Bridge's checkpoint timer) and once more at shutdown.
class CheckpointBook {
 public:
  struct Entry {
    std::string file;
    std::string label;   // "db.table on server 'x'" for messages
    // The last change handed to the sinks: what a reconnect resumes after (the
    // lines are still in this process). Empty: nothing known yet.
    std::string cursor;
    // The last change whose line every sink had written out (no queue held
    // anything): what the file records, so a restart never resumes after a
    // line that was still queued when the process ended.
    std::string written;
    bool dirty = false;
    void set(std::string_view c) { cursor.assign(c); }
    // Called when no sink holds a queued line: everything handed over so far is out.
    void drained() {
      if (written == cursor) return;
      written = cursor;
      dirty = true;
    }
  };

  // Loads the table's checkpoint (see readCheckpoint for failures); a table
  // added before (a reload restarting it) gets its existing entry back.
  Entry& add(const StateDir& dir, const std::string& server, const std::string& database,
             const std::string& table, const std::string& label);
  // Every sink has written out every line it was given.
  void drained();
  // Writes every changed entry; a failure is logged and retried next time.
  void flush();

 private:
  std::deque<Entry> entries_;  // stable addresses: sources hold references
};

}  // namespace hdb
