"""The compose deployment (compose/compose.yaml), for real, with podman and podman-compose.

Run by scripts/compose-test.sh, which installs the container runtime, creates the base
image and builds the images first. This script brings the stack up with three edges behind
the load balancer and checks, against the running containers:

  1. every service's health check passes, and one node is active, the other a standby;
  2. missing and wrong tokens get 401 and 403 at the load balancer and at the node; the
     standby refuses batches (503 not_owner) and serves catalog reads, with the same token;
  3. writes through the load balancer reach every edge (each edge's /metrics counts some),
     and PyIceberg and DuckDB on the host read them back exactly through the active node's
     catalog, from the S3 warehouse;
  4. an edge stopped while a retrying producer writes loses nothing acknowledged;
  5. the active node killed and its volume deleted while a retrying producer writes: the
     standby takes over, the killed node comes back as a standby with an empty volume, and
     every acknowledged event is in the table exactly once, read through either node;
  6. SIGTERM stops the nodes and the edges cleanly (exit code 0, before the grace period);
  7. `down` then `up` keeps every table, and sequences continue;
  8. `compose run query` answers SQL over the same tables.

Every wait has a deadline; every figure checked is printed.
"""

import argparse
import concurrent.futures
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
PAIR_FACTOR = 1000003
TABLE = "clicks"
# A fixed event time (2026-01-02T03:00:00Z) keeps the data in a known partition.
EVENT_MS = 1767322800000
NODES = ("node", "node-standby")


def log(msg):
    print(f"[compose-test {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_env_file(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip()
    return values


def wait_for(what, probe, timeout=120, interval=0.5):
    """Calls probe() until it returns a truthy value; fails with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - the probe's error is reported at the deadline
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


class Stack:
    def __init__(self, args):
        self.args = args
        self.env = dict(os.environ)
        self.values = read_env_file(os.path.join(args.compose_dir, ".env"))
        self.env.update({
            "ZOMBI_IMAGE": args.image,
            "ZOMBI_LB_PORT": str(args.lb_port),
            "ZOMBI_NODE_PORT": str(args.node_port),
            "ZOMBI_NODE_STANDBY_PORT": str(args.standby_port),
            "ZOMBI_S3_PORT": str(args.s3_port),
            "ZOMBI_BIND": "127.0.0.1",
        })
        self.compose = [args.podman_compose, "-p", args.project, "-f",
                        os.path.join(args.compose_dir, "compose.yaml")]
        self.lb = f"http://127.0.0.1:{args.lb_port}"
        # Each node's published port; which one is active changes (see active_node).
        self.node_urls = {"node": f"http://127.0.0.1:{args.node_port}",
                          "node-standby": f"http://127.0.0.1:{args.standby_port}"}
        self.s3 = f"http://127.0.0.1:{args.s3_port}"

    def run(self, *cmd, check=True, timeout=600, quiet=False):
        proc = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"`{' '.join(cmd)}` exited with {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
        if not quiet and proc.returncode != 0:
            log(f"`{' '.join(cmd)}` exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
        return proc

    def compose_cmd(self, *args, check=True, timeout=600):
        return self.run(*self.compose, *args, check=check, timeout=timeout)

    def containers(self, service, all_states=False):
        """Container names of one service of this project, sorted."""
        cmd = ["podman", "ps", "--format", "{{.Names}}",
               "--filter", f"label=com.docker.compose.project={self.args.project}",
               "--filter", f"label=com.docker.compose.service={service}"]
        if all_states:
            cmd.append("-a")
        return sorted(n for n in self.run(*cmd).stdout.split() if n)

    def purge(self):
        """`down -v`, then removes whatever of this project is left (podman-compose's
        `down` misses replicas beyond the file's count, such as a `--scale`d edge)."""
        self.compose_cmd("--profile", "query", "down", "-v", check=False, timeout=300)
        self.remove_extra_replicas(keep=0)
        label = f"label=com.docker.compose.project={self.args.project}"
        vols = self.run("podman", "volume", "ls", "-q", "--filter", label).stdout.split()
        if vols:
            self.run("podman", "volume", "rm", "-f", *vols, check=False)
        self.run("podman", "network", "rm", "-f", f"{self.args.project}_default", check=False, quiet=True)

    def remove_extra_replicas(self, keep):
        """Removes containers beyond the first `keep` of each service, dependents first
        (podman refuses to remove a container that another one requires)."""
        for service in ("query", "lb", "edge", "node-standby", "node", "s3"):
            for name in self.containers(service, all_states=True):
                number = name.rsplit("_", 1)[-1]
                if not number.isdigit() or int(number) > keep:
                    self.run("podman", "rm", "-f", "-t", "10", name, check=False, quiet=True)

    def token(self, name):
        return self.values[name]

    def role(self, service):
        """(HTTP status, role) of a node's /health on its published port; None if it does
        not answer."""
        try:
            r = requests.get(f"{self.node_urls[service]}/health", timeout=2)
            return r.status_code, r.json().get("role")
        except (requests.RequestException, ValueError):
            return None

    def active_node(self, timeout=120):
        """The service name of the node that is active (/health 200, role active)."""
        def probe():
            for service in NODES:
                if self.role(service) == (200, "active"):
                    return service
            return None
        return wait_for("an active node", probe, timeout=timeout, interval=0.2)

    @property
    def node(self):
        """The active node's published URL: the catalog, admin and read API are there."""
        return self.node_urls[self.active_node()]

    def logs(self):
        for service in ("s3", *NODES, "edge", "lb"):
            for name in self.containers(service, all_states=True):
                out = self.run("podman", "logs", "--tail", "40", name, check=False, quiet=True)
                log(f"--- logs of {name} ---\n{out.stdout}{out.stderr}")


def bearer(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


class Producer:
    """Writes events through the load balancer and records every acknowledged
    (partition, sequence). With idempotency keys it retries until acknowledged."""

    def __init__(self, stack, token, table=TABLE):
        self.table = table
        self.url = f"{stack.lb}/tables/{table}"
        self.token = token
        self.local = threading.local()
        self.lock = threading.Lock()
        self.acked = set()
        self.sum_v = 0
        self.ack_times = []
        self.retries = 0
        self.duplicates = 0

    def session(self):
        if not hasattr(self.local, "s"):
            self.local.s = requests.Session()
        return self.local.s

    def record(self, pairs, sum_v):
        with self.lock:
            for pair in pairs:
                assert pair not in self.acked, f"sequence {pair} acknowledged twice"
                self.acked.add(pair)
            self.sum_v += sum_v
            self.ack_times.append(time.monotonic())

    def single(self, i, partition, key=None, deadline_s=90):
        body = {"payload": {"v": i}, "partition": partition, "timestamp_ms": EVENT_MS}
        headers = {**bearer(self.token), "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                r = self.session().post(self.url, data=json.dumps(body), headers=headers, timeout=15)
                if r.status_code == 200:
                    answer = r.json()
                    pair = (answer["partition"], answer["sequence"])
                    if answer.get("duplicate"):
                        # An earlier attempt was stored but its answer was lost (the edge
                        # or the node died): the retry returns the original sequence.
                        with self.lock:
                            self.duplicates += 1
                    self.record([pair], i)
                    return
                error = f"{r.status_code} {r.text[:200]}"
                retryable = r.status_code in (429, 502, 503, 504)
            except requests.RequestException as e:
                error, retryable = str(e), True
                self.local.s = requests.Session()
            if not key or not retryable or time.monotonic() > deadline:
                raise AssertionError(f"event {i} (key {key}) was not acknowledged: {error}")
            with self.lock:
                self.retries += 1
            time.sleep(0.1)

    def bulk(self, start, count, partition):
        records = [{"payload": {"v": start + j}, "partition": partition, "timestamp_ms": EVENT_MS}
                   for j in range(count)]
        headers = {**bearer(self.token), "Content-Type": "application/x-ndjson"}
        body = "\n".join(json.dumps(r) for r in records)
        r = self.session().post(f"{self.url}/bulk", data=body, headers=headers, timeout=30)
        assert r.status_code == 200, f"bulk write answered {r.status_code}: {r.text[:300]}"
        pairs = []
        for rng in r.json()["partitions"]:
            pairs += [(rng["partition"], s) for s in range(rng["first_sequence"], rng["last_sequence"] + 1)]
        assert len(pairs) == count, f"bulk acknowledged {len(pairs)} of {count}"
        self.record(pairs, sum(range(start, start + count)))


def expected_stats(producer):
    """What the table holds if every acknowledged event is in it exactly once: as many rows
    as acknowledged (partition, sequence) pairs, each pair once, and the payloads' sum."""
    with producer.lock:
        acked, sum_v = set(producer.acked), producer.sum_v
    return {
        "count": len(acked),
        "distinct": len(acked),
        "pair_checksum": sum(p * PAIR_FACTOR + s for p, s in acked),
        "sum_v": sum_v,
    }


def check_engines(stack, producer, label, node=None):
    """PyIceberg and DuckDB on the host, through a node's catalog (the active node's unless
    `node` names a service) and the published S3."""
    table = producer.table
    uri = stack.node_urls[node] if node else stack.node
    cmd = [sys.executable, os.path.join(HERE, "engines.py"), "--uri", uri, "--table", table,
           "--engines", "pyiceberg,duckdb", "--token", stack.token("ZOMBI_CATALOG_TOKEN"),
           "--s3-endpoint", stack.s3, "--s3-key", stack.token("S3_ACCESS_KEY"),
           "--s3-secret", stack.token("S3_SECRET_KEY")]
    out = stack.run(*cmd, timeout=300).stdout
    result = json.loads(out.strip().splitlines()[-1])
    want = expected_stats(producer)
    for engine, stats in result.items():
        got = {k: stats[k] for k in want}
        log(f"{label}: {engine} read {table}: {got}; acknowledged {want}")
        assert got == want, f"{label}: {engine} read {got}, but producers were acknowledged {want}"


def flush(stack, table=TABLE):
    r = requests.post(f"{stack.node}/tables/{table}/flush", headers=bearer(stack.token("ZOMBI_ADMIN_TOKEN")),
                      timeout=120)
    assert r.status_code == 200, f"flush answered {r.status_code}: {r.text[:300]}"


def wait_up(stack, edges):
    """One node active and the other a standby, the edges running, the load balancer up."""
    active = stack.active_node()
    (other,) = set(NODES) - {active}
    wait_for(f"{other} to stand by", lambda: stack.role(other) == (503, "standby"), timeout=120)
    log(f"{active} is active, {other} is a standby")
    wait_for(f"{edges} running edges", lambda: len(stack.containers("edge")) == edges, timeout=60)
    # The load balancer forwards /health to an edge: 200 once an edge is in rotation.
    wait_for("the load balancer to reach an edge",
             lambda: requests.get(f"{stack.lb}/health", timeout=2).status_code == 200)


def check_health_checks(stack):
    """Runs each container's own health check (podman runs them on a systemd timer, which
    this machine lacks, so they are run here by hand): the commands in compose.yaml work."""
    for service in ("s3", *NODES, "edge"):
        for name in stack.containers(service):
            wait_for(f"the health check of {name}",
                     lambda: stack.run("podman", "healthcheck", "run", name, check=False,
                                       quiet=True).returncode == 0,
                     timeout=60, interval=1)
            log(f"health check of {name}: healthy")


def check_auth(stack):
    producer = stack.token("ZOMBI_PRODUCER_TOKEN")
    event = json.dumps({"payload": {"v": -1}})
    json_ct = {"Content-Type": "application/json"}
    active = stack.active_node()
    (standby,) = set(NODES) - {active}
    standby_url = stack.node_urls[standby]
    node = stack.node_urls[active]
    cases = [
        ("producer write without a token", "POST", f"{stack.lb}/tables/{TABLE}", {}, 401),
        ("producer write with a wrong token", "POST", f"{stack.lb}/tables/{TABLE}",
         bearer("wrong-token-0123456789"), 403),
        ("producer write with the catalog token", "POST", f"{stack.lb}/tables/{TABLE}",
         bearer(stack.token("ZOMBI_CATALOG_TOKEN")), 403),
        ("catalog without a token", "GET", f"{node}/v1/config", {}, 401),
        # The catalog answers 401 NotAuthorizedException to a wrong token too (Iceberg REST spec).
        ("catalog with a wrong token", "GET", f"{node}/v1/config", bearer(producer), 401),
        ("stats without a token", "GET", f"{node}/stats", {}, 401),
        ("stats with the catalog token", "GET", f"{node}/stats",
         bearer(stack.token("ZOMBI_CATALOG_TOKEN")), 403),
        ("flush with a wrong token", "POST", f"{node}/tables/{TABLE}/flush", bearer(producer), 403),
        ("internal batches without a token", "POST", f"{node}/internal/v1/batches", {}, 401),
        ("internal batches with the producer token", "POST", f"{node}/internal/v1/batches",
         bearer(producer), 403),
        ("catalog with the catalog token", "GET", f"{node}/v1/config",
         bearer(stack.token("ZOMBI_CATALOG_TOKEN")), 200),
        # The standby serves catalog reads (the committed state), but takes no batches.
        ("standby's catalog without a token", "GET", f"{standby_url}/v1/config", {}, 401),
        ("standby's catalog with the catalog token", "GET", f"{standby_url}/v1/config",
         bearer(stack.token("ZOMBI_CATALOG_TOKEN")), 200),
        ("internal batches to the standby", "POST", f"{standby_url}/internal/v1/batches",
         bearer(stack.token("ZOMBI_INTERNAL_TOKEN")), 503),
    ]
    for what, method, url, headers, want in cases:
        r = requests.request(method, url, headers={**json_ct, **headers}, data=event, timeout=10)
        assert r.status_code == want, f"{what}: {r.status_code} {r.text[:200]}, expected {want}"
        if what == "internal batches to the standby":
            code = r.json()["error"]["code"]
            assert code == "not_owner", f"{what}: error code {code}, expected not_owner"
        log(f"auth: {what} -> {r.status_code}")


def edge_events(stack):
    """zombi_edge_events_total of every running edge, read inside its container."""
    counts = {}
    for name in stack.containers("edge"):
        text = stack.run("podman", "exec", name, "curl", "-fsS", "http://127.0.0.1:8080/metrics").stdout
        m = re.search(r"^zombi_edge_events_total(?:\{[^}]*\})? (\S+)$", text, re.M)
        counts[name] = float(m.group(1)) if m else 0.0
    return counts


def phase_spread(stack, producer, orders):
    """Writes through the load balancer from several connections; every edge serves some."""
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(producer.single, i, i % 4) for i in range(600)]
        futures += [pool.submit(producer.bulk, 10_000 + 50 * b, 50, b % 4) for b in range(20)]
        futures += [pool.submit(orders.bulk, 40 * b, 40, b % 2) for b in range(5)]
        for f in futures:
            f.result()
    counts = edge_events(stack)
    total = len(producer.acked) + len(orders.acked)
    log(f"events acknowledged per edge: {counts}")
    assert len(counts) == 3, f"expected 3 edges, found {sorted(counts)}"
    assert all(c > 0 for c in counts.values()), f"an edge served no writes: {counts}"
    assert sum(counts.values()) == total, \
        f"edges counted {sum(counts.values())} events, producers were acknowledged {total}"


def phase_scale(stack, producer):
    """`up --scale edge=4` adds an edge that the load balancer finds by DNS, without a restart."""
    before = set(stack.containers("edge"))
    stack.compose_cmd("up", "-d", "--no-recreate", "--scale", "edge=4", timeout=300)
    wait_for("a fourth edge", lambda: len(stack.containers("edge")) == 4, timeout=60)
    (added,) = set(stack.containers("edge")) - before
    lb = stack.containers("lb")
    i = 50_000

    def new_edge_served():
        nonlocal i
        for _ in range(40):
            producer.single(i, i % 4)
            i += 1
        return edge_events(stack).get(added, 0) > 0

    wait_for(f"the load balancer to send writes to {added}", new_edge_served, timeout=60, interval=0.2)
    assert stack.containers("lb") == lb, "scaling the edges restarted the load balancer"
    log(f"scaled to 4 edges: {added} served writes after {i - 50_000} more events, "
        f"the load balancer was not restarted")


def write_while(stack, producer, what, action, first, count=900):
    """Writes `count` keyed events with retries while `action` runs once 150 are acknowledged."""
    before, retries_before, dups_before = len(producer.acked), producer.retries, producer.duplicates
    done = threading.Event()

    def act():
        wait_for("writes before the edge goes", lambda: len(producer.acked) >= before + 150, timeout=120,
                 interval=0.05)
        action()
        done.set()

    actor = threading.Thread(target=act)
    actor.start()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(producer.single, first + i, i % 4, f"{what}-{i}") for i in range(count)]
        for f in futures:
            f.result()
    actor.join(timeout=150)
    assert done.is_set(), f"{what}: the action did not finish"
    got = len(producer.acked) - before
    log(f"{what}: {got} of {count} keyed events acknowledged once each, "
        f"{producer.retries - retries_before} retries by the producer, "
        f"{producer.duplicates - dups_before} of them answered as duplicates of a stored attempt")
    assert got == count, f"{what}: {got} distinct acknowledgements for {count} keyed events"


def phase_edges_lost(stack, producer):
    """One edge stops (SIGTERM) and one is killed (SIGKILL) while producers write with
    idempotency keys: every event is acknowledged once, and nothing acknowledged is lost."""
    edges = stack.containers("edge")
    stopped, killed = edges[1], edges[2]

    def stop():
        log(f"stopping {stopped} (SIGTERM) while producers write")
        stack.run("podman", "stop", "-t", "30", stopped)
        code = stack.run("podman", "inspect", "--format", "{{.State.ExitCode}}", stopped).stdout.strip()
        assert code == "0", f"{stopped} exited with {code} on SIGTERM"
        log(f"{stopped} exited with 0")

    def kill():
        log(f"killing {killed} (SIGKILL) while producers write")
        stack.run("podman", "kill", killed)

    write_while(stack, producer, "edge-stopped", stop, 100_000)
    write_while(stack, producer, "edge-killed", kill, 150_000)


def node_volume(stack, container):
    """The name of the volume a node container keeps its data directory in."""
    mounts = json.loads(stack.run("podman", "inspect", "--format", "{{json .Mounts}}", container).stdout)
    (volume,) = [m["Name"] for m in mounts if m["Destination"] == "/var/lib/zombi"]
    return volume


def phase_failover(stack, producer):
    """The active node's container is killed (SIGKILL) and removed with its volume while
    producers write keyed events through the load balancer: the standby takes over, the
    producers' retries go through, and the killed service comes back as a standby with an
    empty volume. Every acknowledged event is then in the table once (checked by the
    caller through the new active node's catalog)."""
    active = stack.active_node()
    (standby,) = set(NODES) - {active}
    (container,) = stack.containers(active)
    volume = node_volume(stack, container)
    before, retries_before, dups_before = len(producer.acked), producer.retries, producer.duplicates
    stop = threading.Event()
    numbers = itertools.count()

    def writer():
        while not stop.is_set():
            i = next(numbers)
            producer.single(400_000 + i, i % 4, f"failover-{i}", deadline_s=120)

    def acked_since(t):
        with producer.lock:
            return sum(1 for a in producer.ack_times if a > t)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        writers = [pool.submit(writer) for _ in range(6)]
        try:
            wait_for("writes before the kill", lambda: len(producer.acked) >= before + 150, timeout=120,
                     interval=0.05)
            log(f"killing {container}, the active node, (SIGKILL) and deleting its volume {volume} "
                f"while producers write")
            killed = time.monotonic()
            stack.run("podman", "kill", container)
            stack.run("podman", "rm", "-f", "-t", "0", container)
            stack.run("podman", "volume", "rm", volume)
            assert stack.run("podman", "volume", "exists", volume, check=False, quiet=True).returncode != 0
            wait_for(f"{standby} to become active", lambda: stack.role(standby) == (200, "active"),
                     timeout=120, interval=0.1)
            active_at = time.monotonic()
            took_over = active_at - killed
            log(f"{standby} reports role active {took_over:.1f}s after the kill")
            # log.takeover_after_ms (5 s) without a segment, then recovery from the log.
            assert took_over < 30, f"{standby} took {took_over:.1f}s to take over"
            wait_for("writes after the takeover", lambda: acked_since(active_at) >= 150,
                     timeout=120, interval=0.05)

            log(f"bringing {active} back with an empty volume")
            back = time.monotonic()
            stack.compose_cmd("up", "-d", "--no-recreate", active, timeout=300)
            wait_for(f"{active} to stand by", lambda: stack.role(active) == (503, "standby"), timeout=120)
            log(f"{active} is back as a standby {time.monotonic() - back:.1f}s after `up`")
            assert stack.role(standby) == (200, "active"), f"{standby} is no longer active"
            (container,) = stack.containers(active)
            files = stack.run("podman", "exec", container, "ls", "-A", "/var/lib/zombi").stdout.split()
            assert "log-writer" not in files, f"{active} came back with a log writer id: {files}"
            wait_for("writes with both nodes up", lambda: acked_since(back) >= 150, timeout=120,
                     interval=0.05)
        finally:
            stop.set()
        for f in writers:
            f.result()
    keys = next(numbers)
    with producer.lock:
        times = sorted(a for a in producer.ack_times if a > killed - 5)
    # The producers' view of the takeover: the longest pause between acknowledgements.
    paused, resumed = max(zip(times, times[1:]), key=lambda gap: gap[1] - gap[0])
    got = len(producer.acked) - before
    log(f"failover: {got} of {keys} keyed events acknowledged once each; acknowledgements "
        f"paused {resumed - paused:.1f}s, from {paused - killed:+.1f}s to {resumed - killed:+.1f}s "
        f"after the kill; "
        f"{producer.retries - retries_before} retries by the producers, "
        f"{producer.duplicates - dups_before} answered as duplicates of a stored attempt")
    assert got == keys, f"failover: {got} distinct acknowledgements for {keys} keyed events"
    return active, standby


def phase_restart(stack, producer):
    """SIGTERM stops nodes and edges cleanly; `down` + `up` keeps the tables."""
    grace = 60
    running = stack.containers("node") + stack.containers("node-standby") + stack.containers("edge")
    started = time.monotonic()
    stack.compose_cmd("stop", timeout=300)
    took = time.monotonic() - started
    for name in running:
        code = stack.run("podman", "inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        log(f"{name} exited with {code}")
        assert code == "0", f"{name} exited with {code} after SIGTERM (137 means it was killed)"
    log(f"`stop` took {took:.1f}s")
    assert took < grace, f"`stop` took {took:.1f}s, as long as the grace period: something was killed"
    # podman-compose's `down` handles the file's replica count only; the edge added by
    # `--scale` would keep the node (which it requires) from being removed.
    stack.remove_extra_replicas(keep=3)
    stack.compose_cmd("down", timeout=300)
    assert not stack.containers("node", all_states=True), "`down` left the node container"
    assert not stack.containers("node-standby", all_states=True), "`down` left the standby's container"
    stack.compose_cmd("up", "-d", timeout=600)
    wait_up(stack, edges=3)


def phase_query(stack, total):
    out = stack.compose_cmd("--profile", "query", "run", "--rm", "query",
                            f"SELECT count(*) AS n, count(DISTINCT (partition, sequence)) AS d FROM {TABLE}",
                            timeout=300).stdout
    log(f"`compose run query`:\n{out.strip()}")
    numbers = re.findall(r"│\s*(\d+)\s*│\s*(\d+)\s*│", out)
    assert numbers and numbers[-1] == (str(total), str(total)), \
        f"`compose run query` did not answer count = distinct = {total}:\n{out}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--compose-dir", required=True)
    p.add_argument("--podman-compose", required=True)
    p.add_argument("--project", default="zombi-test")
    p.add_argument("--image", required=True, help="the Zombi image the node and edges run")
    p.add_argument("--lb-port", type=int, default=0, help="published port (0: a free one)")
    p.add_argument("--node-port", type=int, default=0)
    p.add_argument("--standby-port", type=int, default=0)
    p.add_argument("--s3-port", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    args = p.parse_args()
    for name in ("lb_port", "node_port", "standby_port", "s3_port"):
        if not getattr(args, name):
            setattr(args, name, free_port())

    stack = Stack(args)
    stack.purge()
    ok = False
    try:
        started = time.monotonic()
        stack.compose_cmd("up", "-d", timeout=600)
        wait_up(stack, edges=3)
        log(f"stack up with 3 edges in {time.monotonic() - started:.1f}s")
        check_health_checks(stack)
        check_auth(stack)

        producer = Producer(stack, stack.token("ZOMBI_PRODUCER_TOKEN"))
        orders = Producer(stack, stack.token("ZOMBI_PRODUCER_TOKEN"), table="orders")
        phase_spread(stack, producer, orders)
        flush(stack)
        flush(stack, "orders")
        check_engines(stack, producer, "through 3 edges")

        phase_scale(stack, producer)
        phase_edges_lost(stack, producer)
        flush(stack)
        check_engines(stack, producer, "with edges stopped and killed")

        active, standby = phase_failover(stack, producer)
        flush(stack)
        check_engines(stack, producer, f"after the loss of {active} and its volume, through {standby}")
        check_engines(stack, orders, f"after the loss of {active} and its volume, through {standby}")
        # The node that came back, empty, serves the same committed tables (catalog reads).
        check_engines(stack, producer, f"through {active}, back as a standby", node=active)

        # Unflushed writes: the node's final flush on SIGTERM commits them.
        for i in range(50):
            producer.single(200_000 + i, i % 4, f"pre-stop-{i}")
        phase_restart(stack, producer)
        check_engines(stack, producer, "after down and up")
        check_engines(stack, orders, "after down and up")
        before = set(producer.acked)
        for i in range(40):
            producer.single(300_000 + i, i % 4, f"post-up-{i}")
        assert len(producer.acked) == len(before) + 40
        flush(stack)
        check_engines(stack, producer, "written after up")
        phase_query(stack, len(producer.acked))
        ok = True
        log(f"passed: {len(producer.acked)} events acknowledged and read back exactly")
    finally:
        if not ok:
            stack.logs()
        if not args.keep:
            stack.purge()


if __name__ == "__main__":
    main()
