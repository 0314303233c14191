# Sends N requests drawn (seeded) from the benchmark's request pool over one
# keep-alive connection and reads every response.
#   replay.py PORT requests.tsv N SEED
import random
import socket
import sys

port, pool_file, n, seed = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pool = [line.rstrip("\n").split("\t") for line in open(pool_file)]
rnd = random.Random(seed)
conn = socket.create_connection(("127.0.0.1", port))
responses = conn.makefile("rb")
for _ in range(n):
    _, target, cookie, agent, others = rnd.choice(pool)
    head = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"User-Agent: {agent}"]
    if cookie:
        head.append(f"Cookie: {cookie}")
    head += [h for h in others.split("|") if h]
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    status = responses.readline()
    if b" 200 " not in status:
        sys.exit(f"replay: {target}: {status!r}")
    length = 0
    while (line := responses.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    responses.read(length)
conn.close()
