#!/usr/bin/env python3
"""The Dockerfile, checked without a container engine.

No engine can build images on the project's machines (no registry with base images is
reachable, and podman's runtime cannot start containers there), so this script does what
`docker build` would do with the files, literally, and then runs the result:

1. The copy list: every workspace member's manifest (cargo loads all of them, even for
   `-p eventline-collector`) and the lock file are copied before the first `cargo build`.
2. The build stage is replayed from exactly the build context: each COPY copies what the
   context holds (after .dockerignore), each RUN runs with `sh -c` in the stage's WORKDIR.
   Only the base image differs: the host's toolchain stands in for `rust:*-slim-bookworm`.
3. The runtime stage's COPY --from takes the built binary; the binary is started with the
   image's ENV and CMD (a non-loopback listen address, as in the image) and must answer the
   HEALTHCHECK's /healthz, and must refuse to start without a proper admin token.

Usage: check.py --clickhouse-url URL [--target-dir DIR] [--keep]
"""

import argparse
import fnmatch
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def fail(message):
    print(f"container check: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def instructions(path):
    """(keyword, argument text) per Dockerfile instruction, continuations joined."""
    out, current = [], ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            stripped = line.strip()
            if not current and (not stripped or stripped.startswith("#")):
                continue
            if stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                current += stripped[:-1] + " "
                continue
            current += stripped
            keyword, _, rest = current.partition(" ")
            out.append((keyword.upper(), rest.strip()))
            current = ""
    return out


def stages(instrs):
    """[(name, base, [instructions])] in order."""
    result = []
    for keyword, arg in instrs:
        if keyword == "FROM":
            parts = arg.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(result))
            result.append((name, parts[0], []))
        elif not result:
            fail(f"{keyword} before the first FROM")
        else:
            result[-1][2].append((keyword, arg))
    return result


def ignore_patterns():
    path = os.path.join(ROOT, ".dockerignore")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def ignored(rel, patterns):
    return any(
        fnmatch.fnmatch(rel, p) or rel.startswith(p.rstrip("/") + "/") for p in patterns
    )


def copy_from_context(src, dest, patterns):
    """COPY src dest: a file, or a directory's contents, minus what .dockerignore excludes."""
    src_path = os.path.join(ROOT, src)
    if ignored(src, patterns) or not os.path.exists(src_path):
        fail(f"COPY {src}: not in the build context")
    if os.path.isfile(src_path):
        target = os.path.join(dest, os.path.basename(src)) if dest.endswith("/") else dest
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        shutil.copy2(src_path, target)
        return
    for dirpath, dirnames, filenames in os.walk(src_path):
        rel_dir = os.path.relpath(dirpath, ROOT)
        dirnames[:] = [d for d in dirnames if not ignored(os.path.join(rel_dir, d), patterns)]
        for name in filenames:
            rel = os.path.join(rel_dir, name)
            if ignored(rel, patterns):
                continue
            target = os.path.join(dest, os.path.relpath(rel, src))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), target)


def check_copy_list(build):
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        members = tomllib.load(f)["workspace"]["members"]
    copied = set()
    for keyword, arg in build:
        if keyword == "RUN" and "cargo build" in arg:
            break
        if keyword == "COPY" and not arg.startswith("--from"):
            copied.update(shlex.split(arg)[:-1])
    needed = ["Cargo.toml", "Cargo.lock"] + [f"{m}/Cargo.toml" for m in members]
    missing = [n for n in needed if n not in copied]
    if missing:
        fail(
            "the Dockerfile's first `cargo build` runs before these are copied: "
            + ", ".join(missing)
            + f" (workspace members: {', '.join(members)})"
        )
    print(f"copy list: the lock file and all {len(members)} workspace manifests ({', '.join(members)})")


def replay_build(build, fs, target_dir, patterns):
    """Runs the build stage in `fs` (the stage's root); returns the stage's ENV."""
    env = dict(os.environ)
    env.pop("CARGO_TARGET_DIR", None)  # the stage's own target/ (or the cache linked there)
    workdir = fs
    for keyword, arg in build:
        if keyword == "WORKDIR":
            workdir = os.path.join(fs, arg.lstrip("/"))
            os.makedirs(workdir, exist_ok=True)
            if target_dir:
                # The image's target/ lives in the stage; here it is a cache that outlives runs,
                # so a machine that built once does not compile every dependency again.
                os.makedirs(target_dir, exist_ok=True)
                os.symlink(target_dir, os.path.join(workdir, "target"))
        elif keyword == "COPY":
            *sources, dest = shlex.split(arg)
            dest_path = dest if dest.startswith("/") else os.path.join(os.path.relpath(workdir, fs), dest)
            dest_abs = os.path.join(fs, dest_path.lstrip("/"))
            if dest.endswith("/") or dest in (".", "./"):
                dest_abs = dest_abs.rstrip("/") + "/"
            for src in sources:
                copy_from_context(src, dest_abs, patterns)
        elif keyword == "RUN":
            print(f"RUN {arg[:100]}{'...' if len(arg) > 100 else ''}", flush=True)
            done = subprocess.run(["sh", "-c", arg], cwd=workdir, env=env)
            if done.returncode != 0:
                fail(f"RUN exited {done.returncode}: {arg}")
        elif keyword == "ENV":
            env.update(parse_env(arg))
        else:
            fail(f"the build stage uses {keyword}, which this check does not replay")
    return env


def parse_env(arg):
    out = {}
    for item in shlex.split(arg):
        key, _, value = item.partition("=")
        out[key] = value
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_image(runtime, stage_roots, clickhouse_url):
    """Assembles the runtime stage's files and starts its ENTRYPOINT + CMD."""
    image_root = tempfile.mkdtemp(prefix="eventline-image-")
    env, entrypoint, cmd, healthcheck = {}, [], [], ""
    for keyword, arg in runtime:
        if keyword == "COPY" and arg.startswith("--from="):
            stage, src, dest = shlex.split(arg[len("--from="):])
            src_abs = os.path.join(stage_roots[stage], src.lstrip("/"))
            if not os.path.isfile(src_abs):
                fail(f"COPY --from={stage} {src}: the build stage did not produce it")
            target = os.path.join(image_root, dest.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(src_abs, target)
        elif keyword == "ENV":
            env.update(parse_env(arg))
        elif keyword == "ENTRYPOINT":
            entrypoint = eval_json_list(arg)
        elif keyword == "CMD":
            cmd = eval_json_list(arg)
        elif keyword == "HEALTHCHECK":
            healthcheck = arg
    if "/healthz" not in healthcheck:
        fail("the image has no HEALTHCHECK on /healthz")
    binary = os.path.join(image_root, "usr/local/bin", entrypoint[0])
    if not os.access(binary, os.X_OK):
        fail(f"ENTRYPOINT {entrypoint[0]} is not an executable in /usr/local/bin of the image")
    base_env = {"PATH": "/usr/bin:/bin", **env, "CLICKHOUSE_URL": clickhouse_url}
    listen = env.get("EVENTLINE_LISTEN", "")
    if not listen.startswith("0.0.0.0:"):
        fail(f"the image listens on `{listen}`, not on all interfaces")

    # Closed by default: the image's own settings without an admin token must not serve.
    try:
        refused = subprocess.run(
            [binary, *entrypoint[1:], *cmd],
            env={**base_env, "EVENTLINE_LISTEN": f"0.0.0.0:{free_port()}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        fail("the image served for 60 s on a public address without EVENTLINE_ADMIN_TOKEN")
    if refused.returncode == 0 or "EVENTLINE_ADMIN_TOKEN" not in refused.stderr + refused.stdout:
        fail(
            "the image started without EVENTLINE_ADMIN_TOKEN on a public address "
            f"(exit {refused.returncode}): {refused.stderr[-500:]}"
        )
    print("without an admin token the image refuses to start, naming EVENTLINE_ADMIN_TOKEN")

    port = free_port()
    database = f"eventline_container_{secrets.token_hex(4)}"
    process = subprocess.Popen(
        [binary, *entrypoint[1:], *cmd],
        env={
            **base_env,
            "EVENTLINE_LISTEN": f"0.0.0.0:{port}",
            "EVENTLINE_ADMIN_TOKEN": secrets.token_hex(32),
            "CLICKHOUSE_DATABASE": database,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                fail(f"the image's binary exited ({process.returncode}): {process.stdout.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                fail("/healthz did not answer within 60 s")
            time.sleep(0.2)  # polling a condition with a deadline, not ordering
        print(f"the image's binary (ENTRYPOINT {entrypoint} CMD {cmd}) answers /healthz on 0.0.0.0:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        req = urllib.request.Request(
            clickhouse_url, data=f"DROP DATABASE IF EXISTS {database}".encode(), method="POST"
        )
        urllib.request.urlopen(req, timeout=30).read()
        shutil.rmtree(image_root, ignore_errors=True)


def eval_json_list(arg):
    import json

    value = json.loads(arg)
    if not isinstance(value, list):
        fail(f"expected the exec form [\"...\"], got {arg}")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clickhouse-url", required=True)
    parser.add_argument("--target-dir", help="cargo target dir kept between runs")
    parser.add_argument("--keep", action="store_true", help="keep the replayed build stage")
    args = parser.parse_args()

    all_stages = stages(instructions(os.path.join(ROOT, "Dockerfile")))
    if len(all_stages) != 2:
        fail(f"expected a build stage and a runtime stage, found {len(all_stages)}")
    (build_name, build_base, build), (_, runtime_base, runtime) = all_stages
    print(f"build stage `{build_name}` FROM {build_base}; runtime FROM {runtime_base}")
    check_copy_list(build)

    fs = tempfile.mkdtemp(prefix="eventline-build-stage-")
    try:
        started = time.monotonic()
        replay_build(build, fs, args.target_dir, ignore_patterns())
        print(f"build stage replayed from the build context in {time.monotonic() - started:.0f} s")
        run_image(runtime, {build_name: fs}, args.clickhouse_url)
    finally:
        if not args.keep:
            shutil.rmtree(fs, ignore_errors=True)
    print("container check: passed")


if __name__ == "__main__":
    main()
