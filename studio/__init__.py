"""The studio application: catalog, image I/O, data sources, CLI and the Gradio UI."""
