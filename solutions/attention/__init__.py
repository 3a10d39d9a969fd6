"""Topic 7: scaled dot-product and multi-head attention in NumPy, and toy sequence tasks learned with them."""
