"""The desktop GUI (PySide6 + pyqtgraph): the only package that imports Qt.

``nasstudio.gui.app.run`` opens the main window.
"""
