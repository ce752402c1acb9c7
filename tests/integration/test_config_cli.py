#!/usr/bin/env python3
"""Broken configs through the real binary: `hdb-bridge --check-config --config FILE` must print each
error as FILE:LINE:COL: key.path: reason (exactly), then "hdb-bridge: N error(s) in FILE", and exit 78
(EX_CONFIG). The table below covers syntax errors, wrong types, unknown keys, duplicates, missing files,
unreadable password files, bad modes, unknown tables and bad URLs; tests/unit/test_config.cpp checks the
same loader in-process. Needs HDB_BRIDGE_BIN.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402

BIN = hdb.bridge_binary()
EX_CONFIG = 78
SECRET = "Cfg-S3cret-91b7e2"  # the cases' password where they have one: no message may repeat it

# (name, config text, the expected error lines with {file} for the config's path)
CASES = [
    ('yaml syntax error',
     'servers: [a, b\nsinks: []\n',
     ['{file}:2:6: (yaml): end of sequence flow not found']),
    ('a stray comma (yaml-cpp 0.7 looped forever on it)',
     ',\n',
     ['{file}:1:1: (yaml): unexpected character at the top of the document']),
    ('undefined alias',
     'servers: *nope\n',
     ['{file}:1:10: (yaml): the referenced anchor is not defined']),
    ('tab indentation',
     'servers:\n\tlocal: {}\n',
     ['{file}:2:7: (yaml): illegal map value']),
    ('empty file',
     '',
     ['{file}:1:1: (root): the file is empty; expected a map with servers, tables and sinks']),
    ('root is a list',
     '- servers\n',
     ['{file}:1:1: (root): expected a map, found a list']),
    ('two documents',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n---\nlog: {level: info}\n',
     ['{file}:6:1: (yaml): a second YAML document starts here; a config is one document']),
    ('unknown root key',
     'sink: []\nservers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:1:1: sink: unknown key; did you mean 'sinks'?"]),
    ('unknown server key',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2, retry: 1}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:2:89: servers.local.retry: unknown key']),
    ('unknown tls key',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2, tls: {verfy: true}}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:2:95: servers.local.tls.verfy: unknown key; did you mean 'verify'?"]),
    ('unknown table key',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals, snapshots: true}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:3:57: tables[0].snapshots: unknown key; did you mean 'snapshot'?"]),
    ('unknown sink key',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout, colour: red}]\n',
     ['{file}:4:35: sinks[0].colour: unknown key']),
    ('duplicate root key',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\nsinks: []\n',
     ['{file}:5:1: sinks: duplicate key (first at line 4, column 1)']),
    ('duplicate server key',
     'servers:\n  local:\n    protocol: harperdb4\n    url: ws://h:1\n    url: ws://h:2\n    username: u\n    password: Cfg-S3cret-91b7e2\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:5:5: servers.local.url: duplicate key (first at line 4, column 5)']),
    ('duplicate server name',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\n  local: {protocol: harperdb4, url: ws://h:2, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:3:3: servers.local: duplicate key (first at line 2, column 3)']),
    ('missing root keys',
     'log: {level: info}\n',
     ["{file}:1:1: (root): missing required key 'servers'", "{file}:1:1: (root): missing required key 'tables'", "{file}:1:1: (root): missing required key 'sinks'"]),
    ('missing server keys',
     'servers:\n  local: {password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:2:10: servers.local: missing required key 'protocol'", "{file}:2:10: servers.local: missing required key 'url'", "{file}:2:10: servers.local: missing required key 'username'"]),
    ('missing password',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:2:10: servers.local: missing password: give password, password_file or password_env']),
    ('two password keys',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2, password_env: HOME}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:2:10: servers.local: give only one of password, password_file and password_env']),
    ('missing password file',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password_file: /nonexistent/pw}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:2:75: servers.local.password_file: cannot read: No such file or directory']),
    ('password file is a directory',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password_file: /tmp}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:2:75: servers.local.password_file: cannot read: Is a directory']),
    ('empty password env',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password_env: HDB_BRIDGE_UNSET_VARIABLE_X}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:2:74: servers.local.password_env: the environment variable is not set']),
    ('missing ca file',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2, tls: {ca_file: /nonexistent/ca.pem}}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:2:104: servers.local.tls.ca_file: cannot read '/nonexistent/ca.pem': No such file or directory"]),
    ('servers is a list',
     'servers: [local]\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:1:10: servers: expected a map of server names, found a list']),
    ('tables is a map',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: {server: local}\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:3:9: tables: expected a list of tables, found a map']),
    ('empty sections',
     'servers: {}\ntables: []\nsinks:\n',
     ['{file}:1:10: servers: at least one server is required', '{file}:2:9: tables: at least one table is required', '{file}:3:1: sinks: at least one sink is required']),
    ('protocol is a list',
     'servers:\n  local: {protocol: [harperdb4], url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:2:21: servers.local.protocol: expected a string, found a list']),
    ('unknown protocol',
     'servers:\n  local: {protocol: harperdb5, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:2:21: servers.local.protocol: unknown protocol 'harperdb5'; expected harperdb4 or harperdb3"]),
    ('bad log level',
     'log: {level: verbose}\nservers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:1:14: log.level: unknown log level 'verbose'; expected trace, debug, info, warn or error"]),
    ('tls verify not a bool',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2, tls: {verify: 1}}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:2:103: servers.local.tls.verify: expected true or false, found '1'"]),
    ('url without scheme',
     'servers:\n  local: {protocol: harperdb4, url: 127.0.0.1:9926, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:2:37: servers.local.url: expected ws://HOST[:PORT][/PATH] or wss://...']),
    ('url with http scheme',
     'servers:\n  local: {protocol: harperdb4, url: http://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:2:37: servers.local.url: scheme must be ws or wss, not 'http'"]),
    ('url with bad port',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:99999, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:2:37: servers.local.url: port must be a number from 1 to 65535']),
    ('url without host',
     "servers:\n  local: {protocol: harperdb4, url: 'ws://:9926', username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n",
     ['{file}:2:37: servers.local.url: missing host']),
    ('url ipv6 without brackets',
     "servers:\n  local: {protocol: harperdb4, url: 'ws://::1:9926', username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n",
     ['{file}:2:37: servers.local.url: an IPv6 address must be in brackets, like ws://[::1]:9926']),
    ('url with a space',
     "servers:\n  local: {protocol: harperdb4, url: 'ws://h:1/a b', username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n",
     ['{file}:2:37: servers.local.url: must not contain spaces']),
    ('harperdb3 without tls',
     'servers:\n  local: {protocol: harperdb3, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, schema: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:2:37: servers.local.url: harperdb3 needs wss://: HarperDB 3 clustering always uses TLS']),
    ('bad bind_address',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2, bind_address: localhost}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:2:103: servers.local.bind_address: expected an IPv4 or IPv6 address to connect from, found 'localhost'"]),
    ('max_message_bytes too small',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2, max_message_bytes: 10}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:2:108: servers.local.max_message_bytes: must be from 1KiB to 1GiB, found '10'"]),
    ('max_message_bytes not a size',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2, max_message_bytes: huge}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:2:108: servers.local.max_message_bytes: expected a number of bytes or a size like '64KiB' or '16MiB', found 'huge'"]),
    ('unknown server in a table',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: remote, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:3:19: tables[0].server: unknown server 'remote'"]),
    ('bad table name',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev.x, table: a/b}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:3:36: tables[0].database: must not contain '.' or '/': 'dev.x'", "{file}:3:50: tables[0].table: must not contain '.' or '/': 'a/b'"]),
    ('database and schema both',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, schema: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ['{file}:3:49: tables[0].schema: schema is another name for database; give only one of them']),
    ('duplicate table',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}, {server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:3:58: tables[1]: dev.animals on server 'local' is already configured at tables[0]"]),
    ('snapshot not a bool',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals, snapshot: yes}]\nsinks: [{name: out, type: stdout}]\n',
     ["{file}:3:67: tables[0].snapshot: expected true or false, found 'yes'"]),
    ('unknown sink type',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: kafka}]\n',
     ["{file}:4:27: sinks[0].type: unknown sink type 'kafka'; expected stdout, unix, fifo or ingest"]),
    ('duplicate sink name',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}, {name: out, type: stdout}]\n',
     ["{file}:4:43: sinks[1].name: sink name 'out' is already used by sinks[0]"]),
    ('unix sink without path',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: s, type: unix}]\n',
     ["{file}:4:9: sinks[0]: missing required key 'path' (a unix sink needs one)"]),
    ('unix sink relative path',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: s, type: unix, path: run/s.sock}]\n',
     ["{file}:4:37: sinks[0].path: must be an absolute path, found 'run/s.sock'"]),
    ('unix sink path too long',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: s, type: unix, path: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}]\n',
     ['{file}:4:37: sinks[0].path: is 121 bytes long; a Unix socket path has at most 107']),
    ('bad sink mode',
     "servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: s, type: unix, path: /run/s.sock, mode: '0999'}]\n",
     ["{file}:4:56: sinks[0].mode: expected an octal mode from '0000' to '0777' like '0660', found '0999'"]),
    ('bad queue_bytes',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: s, type: unix, path: /run/s.sock, queue_bytes: 0}]\n',
     ['{file}:4:63: sinks[0].queue_bytes: must be greater than 0']),
    ('sink names an unknown table',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout, tables: [dev.cats]}]\n',
     ["{file}:4:44: sinks[0].tables[0]: table 'dev.cats' is not configured under tables"]),
    ('sink table not database.table',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout, tables: [animals]}]\n',
     ["{file}:4:44: sinks[0].tables[0]: expected database.table, found 'animals'"]),
    ('stdout sink with a path',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout, path: /run/x.sock}]\n',
     ['{file}:4:41: sinks[0].path: only unix, fifo and ingest sinks take this key']),
    ('duplicate unix path',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: a, type: unix, path: /run/s.sock}, {name: b, type: unix, path: /run//s.sock}]\n',
     ['{file}:4:79: sinks[1].path: path is already used by sinks[0]']),
    ('metrics listen is a host name',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\nmetrics: {listen: localhost:9464}\n',
     ["{file}:5:19: metrics.listen: expected an IP address, found 'localhost' (names are not looked up)"]),
    ('metrics listen without a port',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\nmetrics: {listen: 127.0.0.1}\n',
     ['{file}:5:19: metrics.listen: expected IP:PORT like 127.0.0.1:9464 or [::1]:9464, or an absolute Unix socket path']),
    ('metrics port out of range',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\nmetrics: {listen: 127.0.0.1:99999}\n',
     ["{file}:5:19: metrics.listen: expected a port from 0 to 65535, found '99999'"]),
    ('metrics IPv6 without brackets',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\nmetrics: {listen: "::1:9464"}\n',
     ['{file}:5:19: metrics.listen: an IPv6 address must be in brackets, like [::1]:9464']),
    ('metrics relative socket path',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\nmetrics: {listen: run/m.sock}\n',
     ["{file}:5:19: metrics.listen: a Unix socket path must be absolute, found 'run/m.sock'"]),
    ('metrics without listen',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\nmetrics: {port: 9464}\n',
     ["{file}:5:10: metrics: missing required key 'listen'", '{file}:5:11: metrics.port: unknown key']),
    ('metrics mode on a TCP address',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\nmetrics: {listen: 127.0.0.1:9464, mode: "0600"}\n',
     ['{file}:5:41: metrics.mode: only a Unix socket path under listen takes a mode']),
    ('metrics bad mode',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\nmetrics: {listen: /run/m.sock, mode: "0999"}\n',
     ["{file}:5:38: metrics.mode: expected an octal mode from '0000' to '0777' like '0660', found '0999'"]),
    ('metrics not a map',
     'servers:\n  local: {protocol: harperdb4, url: ws://h:1, username: u, password: Cfg-S3cret-91b7e2}\ntables: [{server: local, database: dev, table: animals}]\nsinks: [{name: out, type: stdout}]\nmetrics: 9464\n',
     ['{file}:5:10: metrics: expected a map, found a string']),
]


def check(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return hdb.run_bridge(["--check-config", "--config", str(config)], binary=BIN, timeout=10,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})})


class BrokenConfigs(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="hdb-config-cli-")
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)

    def test_table_of_broken_configs(self) -> None:
        self.assertGreaterEqual(len(CASES), 40)
        config = self.dir / "hdb-bridge.yaml"
        for name, text, expected in CASES:
            with self.subTest(name):
                config.write_text(text)
                r = check(config)
                lines = [line.replace(str(config), "{file}") for line in r.stderr.splitlines()]
                self.assertEqual(lines, [*expected, f"hdb-bridge: {len(expected)} error(s) in {{file}}"])
                self.assertEqual(r.returncode, EX_CONFIG)
                self.assertEqual(r.stdout, "")
                self.assertNotIn(SECRET, r.stderr)

    def test_missing_and_unreadable_config_files(self) -> None:
        for path, reason in [(self.dir / "none.yaml", "No such file or directory"), (self.dir, "Is a directory")]:
            with self.subTest(str(path)):
                r = check(path)
                self.assertEqual(r.stderr.splitlines(), [f"{path}: cannot read: {reason}",
                                                         f"hdb-bridge: 1 error(s) in {path}"])
                self.assertEqual(r.returncode, EX_CONFIG)

    def test_the_shipped_configs_pass(self) -> None:
        # hdb-bridge.yaml takes its password from systemd's LoadCredential=, as when installed.
        (self.dir / "password").write_text("secret\n")
        for name in ("hdb-bridge.yaml", "demo.yaml"):
            r = check(hdb.REPO / "config" / name, {"CREDENTIALS_DIRECTORY": str(self.dir)})
            self.assertEqual((r.returncode, r.stderr), (0, ""), name)

    def test_the_installed_config_without_its_credential(self) -> None:
        # Neither under systemd nor with /etc/hdb-bridge/password: one precise line, no secret involved.
        text = (hdb.REPO / "config" / "hdb-bridge.yaml").read_text()
        config = self.dir / "hdb-bridge.yaml"
        config.write_text(text.replace("${CREDENTIALS_DIRECTORY:-/etc/hdb-bridge}", "${CREDENTIALS_DIRECTORY}"))
        line = next(i for i, l in enumerate(text.splitlines(), 1) if "password_file:" in l and not l.lstrip().startswith("#"))
        r = check(config)
        self.assertEqual(r.stderr.splitlines()[0],
                         f"{config}:{line}:20: servers.local.password_file: ${{CREDENTIALS_DIRECTORY}} is not set "
                         "(systemd sets it for a unit with LoadCredential=)")
        self.assertEqual(r.returncode, EX_CONFIG)


if __name__ == "__main__":
    unittest.main()
