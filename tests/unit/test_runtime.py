"""The actor runtime's mailbox and futures (actors/runtime.py), in a gevent-patched subprocess
as the server runs them: order, depth, ask replies, exceptions and timeouts."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    from actor_nats.actors.runtime import patch
    patch()
    import gevent, pykka
    from actor_nats.actors.runtime import Actor

    class Echo(Actor):
        kind = "echo"
        def __init__(self, path):
            super().__init__(path)
            self.seen = []
        def handle(self, m):
            if m[0] == "boom":
                raise ValueError("boom")
            if m[0] == "slow":
                gevent.sleep(0.3)
            if m[0] == "seen":
                return list(self.seen)
            self.seen.append(m[1] if len(m) > 1 else None)
            return m[1] if len(m) > 1 else None

    a = Echo.start("/t/a")
    for i in range(1000):
        a.tell(("n", i))
    print("depth", a.actor_inbox.qsize() > 0)
    print("order", a.ask(("seen",)) == list(range(1000)))
    print("reply", a.ask(("n", "x")))
    try:
        a.ask(("boom",))
    except ValueError as e:
        print("raised", e)
    try:
        a.ask(("slow",), timeout=0.05)
    except pykka.Timeout:
        print("timeout")
    f = a.ask(("n", 5), block=False)
    print("future", f.get(), f.get())
    print("all", pykka.get_all([a.ask(("n", i), block=False) for i in range(3)]))

    # two actors telling each other: each wakes the other (a waiting reader is woken once)
    class Pong(Actor):
        kind = "pong"
        def handle(self, m):
            if m[0] == "ping":
                m[1].tell(("pong", m[2]))
    class Ping(Actor):
        kind = "ping"
        def __init__(self, path, peer, done):
            super().__init__(path)
            self.peer, self.done, self.n = peer, done, 0
        def handle(self, m):
            if m[0] in ("go", "pong"):
                self.n += 1
                if self.n > 2000:
                    self.done.set(self.n)
                else:
                    self.peer.tell(("ping", self.actor_ref, self.n))
    from gevent.event import AsyncResult
    done = AsyncResult()
    p = Pong.start("/t/pong")
    q = Ping.start("/t/ping", p, done)
    q.tell(("go",))
    print("pingpong", done.get(timeout=10))
    for r in (a, p, q):
        r.stop()
    print("alive", a.is_alive())
''')


def test_mailbox_and_futures():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:-1] == [
        "depth True", "order True", "reply x", "raised boom", "timeout", "future 5 5",
        "all [0, 1, 2]", "pingpong 2001", "alive False"]
