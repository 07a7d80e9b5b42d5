"""Pages of streaming: the streams page (``/streams``), see :mod:`strato.stream.web.pages`."""
