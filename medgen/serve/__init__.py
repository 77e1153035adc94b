"""The serve stage and the model servers: the stage with its smoke test (`stage`), servers behind one interface
(`backends`: Ollama, llama.cpp), starting one on the exported GGUF (`launch`), llama.cpp's server process and
client (`llamacpp`), the Modelfile (`modelfile`, `Modelfile.tmpl`) and the validity score of one record (`smoke`).

Declared interfaces other stages use: `backends`, `launch`, `smoke`, `llamacpp`.
"""
