"""Real MIT Kerberos captures for krbtrace's tests: ``python3 -m samples.kdcgen [--out DIR] [--check]``.

Starts a private MIT KDC (krb5kdc, kadmind for kpasswd on port 464) on loopback, runs one client scenario per
capture under tcpdump and writes ``NN_name.pcap`` files plus ``samples/MANIFEST`` (the message sequence TShark reads
in each capture). Recipe and pitfalls: ``../shared/docs/real-kdc-captures.md``; protocol: RFC 4120, RFC 3244.
"""
