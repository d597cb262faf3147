"""Small language models: the instruction LLMs that ship inside registry packages."""

from topicsent.llm._packaged import PACKAGED_LLMS, PackagedModel, packaged_model_path

__all__ = ["PACKAGED_LLMS", "PackagedModel", "packaged_model_path"]
