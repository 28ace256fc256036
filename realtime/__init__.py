"""Real-time hand-gesture recognition: C3D clip features, a BiLSTM head and a debouncer.

Stages live in one module each (``sources``, ``ringbuffer``, ``preprocess``, ``c3d``,
``head``, ``debounce``, ``engine``) and ``pipeline`` composes them. Training code
(``synth``, ``train``, ``evaluate``) is never imported by the live path.
"""

__version__ = "0.1.0"
