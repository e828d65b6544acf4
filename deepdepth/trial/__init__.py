"""One trial: its config checked, MNIST served, the network trained by Lightning, and the verdict."""
