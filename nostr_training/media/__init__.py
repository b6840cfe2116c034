"""Recording files: streaming encryption and a Blossom client that uploads and fetches blobs."""
