#!/usr/bin/env python3
"""A TCP proxy for one migration stream that fails it on purpose
(tests/integration/test_migrate.sh):

    stream_proxy.py LISTEN_PORT DEST_PORT cut|flip N

takes one connection on 127.0.0.1:LISTEN_PORT, connects to
127.0.0.1:DEST_PORT and forwards both ways; source to destination it
either cuts both connections once N bytes went through ("cut") or
flips every bit of the byte at offset N ("flip").  Prints "listening"
once ready and exits when the connection ends.
"""
import socket
import sys
import threading


def main():
    listen_port, dest_port, mode, n = (int(sys.argv[1]), int(sys.argv[2]),
                                       sys.argv[3], int(sys.argv[4]))
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(1)
    print("listening", flush=True)
    src, _ = srv.accept()
    srv.close()
    dst = socket.create_connection(("127.0.0.1", dest_port))

    def back():
        try:
            while True:
                data = dst.recv(65536)
                if not data:
                    break
                src.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    threading.Thread(target=back, daemon=True).start()
    sent = 0
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if mode == "cut" and sent + len(data) >= n:
                dst.sendall(data[:n - sent])
                break
            if mode == "flip" and sent <= n < sent + len(data):
                i = n - sent
                data = data[:i] + bytes([data[i] ^ 0xff]) + data[i + 1:]
            dst.sendall(data)
            sent += len(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


if __name__ == "__main__":
    main()
