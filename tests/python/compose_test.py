"""The compose deployment (compose/compose.yaml), for real, with podman and podman-compose.

Run by scripts/compose-test.sh, which installs the container runtime, creates the base
image and builds the images first. This script brings the stack up with three edges behind
the load balancer and checks, against the running containers:

  1. every service's health check passes;
  2. missing and wrong tokens get 401 and 403 at the load balancer and at the node;
  3. writes through the load balancer reach every edge (each edge's /metrics counts some),
     and PyIceberg and DuckDB on the host read them back exactly through the node's
     catalog, from the S3 warehouse;
  4. an edge stopped while a retrying producer writes loses nothing acknowledged;
  5. SIGTERM stops the node and the edges cleanly (exit code 0, before the grace period);
  6. `down` then `up` keeps every table, and sequences continue;
  7. `compose run query` answers SQL over the same tables.

Every wait has a deadline; every figure checked is printed.
"""

import argparse
import concurrent.futures
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
            "ZOMBI_S3_PORT": str(args.s3_port),
            "ZOMBI_BIND": "127.0.0.1",
        })
        self.compose = [args.podman_compose, "-p", args.project, "-f",
                        os.path.join(args.compose_dir, "compose.yaml")]
        self.lb = f"http://127.0.0.1:{args.lb_port}"
        self.node = f"http://127.0.0.1:{args.node_port}"
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
        for service in ("query", "lb", "edge", "node", "s3"):
            for name in self.containers(service, all_states=True):
                number = name.rsplit("_", 1)[-1]
                if not number.isdigit() or int(number) > keep:
                    self.run("podman", "rm", "-f", "-t", "10", name, check=False, quiet=True)

    def token(self, name):
        return self.values[name]

    def logs(self):
        for service in ("s3", "node", "edge", "lb"):
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
        self.retries = 0
        self.duplicates = 0

    def session(self):
        if not hasattr(self.local, "s"):
            self.local.s = requests.Session()
        return self.local.s

    def record(self, pairs):
        with self.lock:
            for pair in pairs:
                assert pair not in self.acked, f"sequence {pair} acknowledged twice"
                self.acked.add(pair)

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
                        # died): the retry returns the original sequence.
                        with self.lock:
                            self.duplicates += 1
                            self.acked.add(pair)
                    else:
                        self.record([pair])
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
        self.record(pairs)


def expected_stats(acked):
    return {
        "count": len(acked),
        "distinct": len(acked),
        "pair_checksum": sum(p * PAIR_FACTOR + s for p, s in acked),
    }


def check_engines(stack, acked, label, table=TABLE):
    """PyIceberg and DuckDB on the host, through the node's catalog and the published S3."""
    cmd = [sys.executable, os.path.join(HERE, "engines.py"), "--uri", stack.node, "--table", table,
           "--engines", "pyiceberg,duckdb", "--token", stack.token("ZOMBI_CATALOG_TOKEN"),
           "--s3-endpoint", stack.s3, "--s3-key", stack.token("S3_ACCESS_KEY"),
           "--s3-secret", stack.token("S3_SECRET_KEY")]
    out = stack.run(*cmd, timeout=300).stdout
    result = json.loads(out.strip().splitlines()[-1])
    want = expected_stats(acked)
    for engine, stats in result.items():
        got = {k: stats[k] for k in want}
        log(f"{label}: {engine} read {table}: {got}; acknowledged {want}")
        assert got == want, f"{label}: {engine} read {got}, but producers were acknowledged {want}"


def flush(stack, table=TABLE):
    r = requests.post(f"{stack.node}/tables/{table}/flush", headers=bearer(stack.token("ZOMBI_ADMIN_TOKEN")),
                      timeout=120)
    assert r.status_code == 200, f"flush answered {r.status_code}: {r.text[:300]}"


def wait_up(stack, edges):
    wait_for("the node's /health on its published port",
             lambda: requests.get(f"{stack.node}/health", timeout=2).status_code == 200)
    wait_for(f"{edges} running edges", lambda: len(stack.containers("edge")) == edges, timeout=60)
    # The load balancer forwards /health to an edge: 200 once an edge is in rotation.
    wait_for("the load balancer to reach an edge",
             lambda: requests.get(f"{stack.lb}/health", timeout=2).status_code == 200)


def check_health_checks(stack):
    """Runs each container's own health check (podman runs them on a systemd timer, which
    this machine lacks, so they are run here by hand): the commands in compose.yaml work."""
    for service in ("s3", "node", "edge"):
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
    cases = [
        ("producer write without a token", "POST", f"{stack.lb}/tables/{TABLE}", {}, 401),
        ("producer write with a wrong token", "POST", f"{stack.lb}/tables/{TABLE}",
         bearer("wrong-token-0123456789"), 403),
        ("producer write with the catalog token", "POST", f"{stack.lb}/tables/{TABLE}",
         bearer(stack.token("ZOMBI_CATALOG_TOKEN")), 403),
        ("catalog without a token", "GET", f"{stack.node}/v1/config", {}, 401),
        # The catalog answers 401 NotAuthorizedException to a wrong token too (Iceberg REST spec).
        ("catalog with a wrong token", "GET", f"{stack.node}/v1/config", bearer(producer), 401),
        ("stats without a token", "GET", f"{stack.node}/stats", {}, 401),
        ("stats with the catalog token", "GET", f"{stack.node}/stats",
         bearer(stack.token("ZOMBI_CATALOG_TOKEN")), 403),
        ("flush with a wrong token", "POST", f"{stack.node}/tables/{TABLE}/flush", bearer(producer), 403),
        ("internal batches without a token", "POST", f"{stack.node}/internal/v1/batches", {}, 401),
        ("internal batches with the producer token", "POST", f"{stack.node}/internal/v1/batches",
         bearer(producer), 403),
        ("catalog with the catalog token", "GET", f"{stack.node}/v1/config",
         bearer(stack.token("ZOMBI_CATALOG_TOKEN")), 200),
    ]
    for what, method, url, headers, want in cases:
        r = requests.request(method, url, headers={**json_ct, **headers}, data=event, timeout=10)
        assert r.status_code == want, f"{what}: {r.status_code} {r.text[:200]}, expected {want}"
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


def phase_restart(stack, producer):
    """SIGTERM stops node and edges cleanly; `down` + `up` keeps the tables."""
    grace = 60
    running = stack.containers("node") + stack.containers("edge")
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
    p.add_argument("--s3-port", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    args = p.parse_args()
    for name in ("lb_port", "node_port", "s3_port"):
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
        check_engines(stack, producer.acked, "through 3 edges")

        phase_scale(stack, producer)
        phase_edges_lost(stack, producer)
        flush(stack)
        check_engines(stack, producer.acked, "with edges stopped and killed")

        # Unflushed writes: the node's final flush on SIGTERM commits them.
        for i in range(50):
            producer.single(200_000 + i, i % 4, f"pre-stop-{i}")
        phase_restart(stack, producer)
        check_engines(stack, producer.acked, "after down and up")
        check_engines(stack, orders.acked, "after down and up", table="orders")
        before = set(producer.acked)
        for i in range(40):
            producer.single(300_000 + i, i % 4, f"post-up-{i}")
        assert len(producer.acked) == len(before) + 40
        flush(stack)
        check_engines(stack, producer.acked, "written after up")
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
