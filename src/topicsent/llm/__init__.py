"""Small language models: the instruction LLMs that ship inside registry packages."""

from topicsent.llm._packaged import PACKAGED_LLMS, PackagedModel, install_packages, model_dir, packaged_model_path

__all__ = ["PACKAGED_LLMS", "PackagedModel", "install_packages", "model_dir", "packaged_model_path"]
