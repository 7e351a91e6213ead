"""Pretrained Hugging Face VQA models behind the same interface as our own bundles.

Every engine offers: name, kind, model_info, device, dtype_name,
encode_images(images) -> opaque image state, and
answer(state, questions, image_index, top_k, explain) -> [Answer].
"""
