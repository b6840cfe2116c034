"""One module per NIP; this package holds what several of them share."""

#: n, the order of the secp256k1 group: a secret key is an integer in 1..n-1.
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
