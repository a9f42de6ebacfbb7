"""A PostgreSQL client that logs in through the gateway with TLS and a token,
then sends a malformed message (a Query whose length field is 2). Prints the
first bytes the gateway answers with, as hex, then whether the socket closed."""
import socket
import ssl
import struct
import sys

port, token = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(struct.pack("!ii", 8, 80877103))
assert s.recv(1) == b"S", "gateway refused TLS"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
params = b"user\0x\0database\0orders\0\0"
t.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
assert t.recv(9)[:1] == b"R", "expected a password request"
pw = token.encode() + b"\0"
t.sendall(b"p" + struct.pack("!i", 4 + len(pw)) + pw)
buf = b""
while b"Z\0\0\0\x05" not in buf:
    chunk = t.recv(65536)
    if not chunk:
        sys.exit("closed before ReadyForQuery: %r" % buf)
    buf += chunk
t.sendall(b"Q" + struct.pack("!i", 2))
answer = b""
try:
    while True:
        chunk = t.recv(65536)
        if not chunk:
            break
        answer += chunk
except (ssl.SSLError, ConnectionResetError, socket.timeout):
    pass
print(answer.hex())
print("closed")
