"""A real Samba AD DC on loopback making the LDAP and SMB2 Kerberos samples (``python3 -m samples.sambagen``);
see samples/samba/README.md."""
