"""The Gradio side of the NER studio: handlers that turn widgets into ``ner_core`` calls and
``ner_core`` results into widgets. ``app.py`` lays the page out and wires these in."""
