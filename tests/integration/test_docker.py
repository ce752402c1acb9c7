#!/usr/bin/env python3
"""The Dockerfile built with buildah and run with podman against a real HarperDB 4.7 on loopback.

No Docker engine and no registry: the base image is the cached Debian 12 root imported as
debian:bookworm-slim (tests/lib/podman.py). The image is built as a user would build it (the build stage
runs the unit tests), then run the way docs/docker.md says: --read-only, --cap-drop all, the config and
the password file bound read-only, the socket directory bound from the host. Proves: changes made in
HarperDB arrive on the socket as seen from the host; the socket belongs to the image's fixed uid; the
HEALTHCHECK passes against /healthz (and fails where the config has no metrics endpoint); the password
also comes from the environment; `podman stop` ends the daemon with exit code 0 and the password never
reaches the logs. Runs as root; ~1 min with a warm build cache, ~10 min for a first build on 2 busy cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402
import podman  # noqa: E402

IMAGE = "localhost/hdb-bridge:test"
UID = 10101  # the Dockerfile's hdb-bridge user and group
FRAMES = hdb.REPO.parent / "shared" / "frames"
PASSWORD = "hdb-docker-pw-4f7a"


def bridge_config(url: str, username: str, password_line: str, metrics_port: int | None) -> str:
    text = (f"servers:\n"
            f"  local:\n"
            f"    protocol: harperdb4\n"
            f"    url: {url}\n"
            f"    username: {username}\n"
            f"    {password_line}\n"
            f"tables:\n"
            f"  - {{server: local, database: dev, table: animals}}\n"
            f"sinks:\n"
            f"  - {{name: animals, type: unix, path: /run/hdb-bridge/animals.sock, mode: \"0660\"}}\n")
    if metrics_port is not None:
        text += f"metrics: {{listen: \"127.0.0.1:{metrics_port}\"}}\n"
    return text


@unittest.skipUnless(os.geteuid() == 0, "buildah and root podman need root")
class DockerImage(unittest.TestCase):
    """One image, one HarperDB and one bridge container for the class; the tests run in name order."""

    @classmethod
    def setUpClass(cls) -> None:
        missing = podman.missing_tools()
        if missing:
            raise RuntimeError(f"missing {missing}: packaging/scripts/deps.sh installs them")
        cls.tmp = Path(tempfile.mkdtemp(prefix="hdb-docker-test-"))
        cls.engine = podman.Engine()
        cls.hdb = None
        cls.name = ""
        try:
            cls.engine.start()
            cls.engine.ensure_base()
            cls.build_log = cls.engine.build(hdb.REPO, IMAGE, "--build-context", f"frames={FRAMES}",
                                             "--build-arg", "JOBS=2")
            cls.hdb = hdb.HarperDB4(password="hdb-admin-pw").start()
            cls.hdb.ensure_table("dev", "animals")
            cls.sockets = cls.directory("sockets", 0o770)
            conf = cls.directory("conf", 0o755)
            cls.metrics_port = hdb.free_port()
            (conf / "hdb-bridge.yaml").write_text(bridge_config(
                cls.hdb.ws_url, cls.hdb.username, "password_file: /run/secrets/hdb-password", cls.metrics_port))
            secret = cls.tmp / "hdb-password"
            secret.write_text(cls.hdb.password + "\n")
            os.chown(secret, UID, UID)
            secret.chmod(0o400)
            t0 = time.monotonic()
            cls.name = cls.engine.run(
                IMAGE, "--read-only", "--cap-drop", "all", "--security-opt", "no-new-privileges",
                "--env", f"HDB_BRIDGE_HEALTHZ=http://127.0.0.1:{cls.metrics_port}/healthz",
                "--volume", f"{conf}:/etc/hdb-bridge:ro",
                "--volume", f"{secret}:/run/secrets/hdb-password:ro",
                "--volume", f"{cls.sockets}:/run/hdb-bridge")
            cls.wait_log(cls.name, "ready", 30)
            cls.engine.timings["run to ready"] = time.monotonic() - t0
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.engine.close()
        if cls.hdb:
            cls.hdb.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", str(cls.tmp)], timeout=60, check=False)
        hdb.log("docker test timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in cls.engine.timings.items()))

    # --- helpers --------------------------------------------------------------------------------
    @classmethod
    def directory(cls, name: str, mode: int) -> Path:
        """A host directory the container's user owns."""
        d = cls.tmp / name
        d.mkdir()
        os.chown(d, UID, UID)
        d.chmod(mode)
        return d

    @classmethod
    def logs(cls, name: str) -> str:
        r = cls.engine.podman("logs", name, check=False)
        return r.stdout + r.stderr

    @classmethod
    def wait_log(cls, name: str, text: str, timeout: float) -> str:
        def seen() -> bool:
            if cls.engine.inspect(name, "{{.State.Running}}") != "true":
                raise AssertionError(f"{name} exited:\n{cls.logs(name)[-3000:]}")
            return text in cls.logs(name)
        hdb.wait_for(seen, timeout, f"{text!r} in the logs of {name}", 0.2)
        return cls.logs(name)

    def healthcheck(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.engine.podman("healthcheck", "run", name, check=False, timeout=30)

    # --- cases ----------------------------------------------------------------------------------
    def test_1_image(self) -> None:
        # The build stage ran the unit tests and the config checker's cases.
        self.assertRegex(self.build_log, r"100% tests passed, 0 tests failed out of 2")
        cfg = self.engine.inspect(IMAGE, "{{.Config.User}} {{json .Config.Volumes}} {{json .Config.Entrypoint}}")
        self.assertIn(f"{UID}:{UID}", cfg)
        self.assertIn('"/run/hdb-bridge":{}', cfg)
        self.assertIn('"/var/lib/hdb-bridge":{}', cfg)
        self.assertIn('["/usr/bin/hdb-bridge"]', cfg)
        self.assertIn("$HDB_BRIDGE_HEALTHZ", self.engine.inspect(IMAGE, "{{json .HealthCheck.Test}}"))
        env = self.engine.inspect(IMAGE, "{{json .Config.Env}}")
        self.assertIn("HDB_BRIDGE_HEALTHZ=http://127.0.0.1:9464/healthz", env)
        size = int(self.engine.inspect(IMAGE, "{{.Size}}"))
        hdb.log(f"docker image {IMAGE}: {size / 1e6:.0f} MB")
        # No compiler or headers came along into the runtime image.
        r = self.engine.podman("run", "--rm", "--network", "none", "--entrypoint", "sh", IMAGE, "-c",
                               "command -v c++ cmake; ls /usr/include/libwebsockets.h; id -u; id -g", check=False)
        self.assertEqual(r.stdout.split(), [str(UID), str(UID)], r.stdout + r.stderr)

    def test_2_changes_reach_the_host_socket(self) -> None:
        sock = self.sockets / "animals.sock"
        st = sock.stat()
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (UID, UID, 0o660))
        with hdb.UnixConsumer(sock) as consumer:
            hdb.wait_for(lambda: "consumer #1" in self.logs(self.name), 10, "the bridge to accept the consumer")
            self.hdb.insert("dev", "animals", [{"id": f"dock-{i}", "n": i} for i in range(5)])
            got = consumer.wait_lines(lambda e: str(e.get("id", "")).startswith("dock-"), 5, timeout=15)
        self.assertEqual(sorted(e["id"] for e in got), [f"dock-{i}" for i in range(5)])
        self.assertTrue(all(e["table"] == "animals" and e["database"] == "dev" for e in got), got[0])

    def test_3_healthcheck(self) -> None:
        r = self.healthcheck(self.name)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.engine.inspect(self.name, "{{.State.Health.Status}}"), "healthy")

    def test_4_password_from_env_and_no_endpoint_is_unhealthy(self) -> None:
        sockets = self.directory("sockets-env", 0o770)
        conf = self.directory("conf-env", 0o755)
        (conf / "hdb-bridge.yaml").write_text(bridge_config(
            self.hdb.ws_url, self.hdb.username, "password_env: HDB_BRIDGE_PASSWORD", None))
        # `--env NAME` without a value takes it from podman's environment: not on any command line.
        self.engine.env["HDB_BRIDGE_PASSWORD"] = self.hdb.password
        try:
            name = self.engine.run(IMAGE, "--read-only", "--cap-drop", "all", "--env", "HDB_BRIDGE_PASSWORD",
                                   "--volume", f"{conf}:/etc/hdb-bridge:ro",
                                   "--volume", f"{sockets}:/run/hdb-bridge")
        finally:
            del self.engine.env["HDB_BRIDGE_PASSWORD"]
        self.wait_log(name, "ready", 30)
        with hdb.UnixConsumer(sockets / "animals.sock") as consumer:
            hdb.wait_for(lambda: "consumer #1" in self.logs(name), 10, "the bridge to accept the consumer")
            self.hdb.insert("dev", "animals", [{"id": "env-1"}])
            consumer.wait_lines(lambda e: e.get("id") == "env-1", 1, timeout=15)
        # This config has no metrics endpoint: nothing answers on /healthz, so the check says unhealthy.
        # (The container's status turns unhealthy only after the start period and 3 failures in a row.)
        r = self.healthcheck(name)
        self.assertEqual((r.returncode, r.stdout.strip()), (1, "unhealthy"), r.stderr)
        self.engine.podman("stop", "--time", "10", name, timeout=30)
        self.assertEqual(self.engine.inspect(name, "{{.State.ExitCode}}"), "0", self.logs(name)[-3000:])
        self.assertNotIn(self.hdb.password, self.logs(name))

    def test_5_stop_is_clean(self) -> None:
        t0 = time.monotonic()
        self.engine.podman("stop", "--time", "10", self.name, timeout=30)
        self.engine.timings["podman stop"] = time.monotonic() - t0
        state = self.engine.inspect(self.name, "{{.State.Status}} {{.State.ExitCode}}")
        self.assertEqual(state, "exited 0", self.logs(self.name)[-3000:])
        logs = self.logs(self.name)
        self.assertIn("hdb-bridge stopped", logs)
        self.assertNotIn(self.hdb.password, logs)
        self.assertFalse((self.sockets / "animals.sock").exists(), "the socket outlived the daemon")


if __name__ == "__main__":
    unittest.main()
