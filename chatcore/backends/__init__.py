"""Backends that generate replies: Ollama servers and the embedded llama.cpp engine."""
