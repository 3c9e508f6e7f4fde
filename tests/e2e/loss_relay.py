"""A UDP relay that loses packets: it stands on another loopback address (127.0.0.2) in front of a node that
advertises that address (DIALTONE_EXTERNAL_IP), one port for each of the node's ports, and forwards each
datagram to the node's real address (127.0.0.1, same port) and the node's answers back to whoever sent on that
port last. On the ports named lossy it drops each datagram with probability `loss`, both ways, from a seeded
random sequence; SIP goes through untouched.

  relay = LossRelay([sip_port, *rtp_ports], lossy=rtp_ports, loss=0.01, seed=7)
  ...
  relay.dropped, relay.passed; relay.stop()
"""
import random
import select
import socket
import threading


class LossRelay:
    def __init__(self, ports, lossy=(), loss=0.0, seed=1, public_ip="127.0.0.2", inner_ip="127.0.0.1"):
        self.inner_ip = inner_ip
        self.loss = loss
        self.rng = random.Random(seed)
        self.dropped = 0
        self.passed = 0
        self.by_sock = {}
        lossy = set(lossy)
        for p in ports:
            pub = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            pub.bind((public_ip, p))
            inner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            inner.bind((inner_ip, 0))
            entry = {"port": p, "pub": pub, "inner": inner, "client": None, "lossy": p in lossy}
            self.by_sock[pub] = entry
            self.by_sock[inner] = entry
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _lose(self, entry):
        if entry["lossy"] and self.rng.random() < self.loss:
            self.dropped += 1
            return True
        self.passed += 1
        return False

    def _run(self):
        socks = list(self.by_sock)
        while self.running:
            ready, _, _ = select.select(socks, [], [], 0.2)
            for s in ready:
                try:
                    data, addr = s.recvfrom(65536)
                except OSError:
                    continue
                e = self.by_sock[s]
                if s is e["pub"]:
                    e["client"] = addr
                    if not self._lose(e):
                        e["inner"].sendto(data, (self.inner_ip, e["port"]))
                elif e["client"] is not None and not self._lose(e):
                    e["pub"].sendto(data, e["client"])

    def stop(self):
        self.running = False
        self.thread.join(2)
        for s in self.by_sock:
            s.close()
