"""The browser app's handlers, one module per concern; ``app.py`` holds the layout and the wiring."""
