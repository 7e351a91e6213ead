"""The model in pure torch: config, encoders, layers, object tokens, the head and its fusion strategies, preprocessing.

Shape letters, used in the shape comments of every module here:
    B   rows of a batch (images or questions)   T, S  query and key tokens of an attention
    Bi  images in a batch                       Bq    questions in a batch (several may share an image)
    Ti  image tokens                            Tq    question tokens
    Ci  image encoder width                     Ct    text encoder width
    D   head width                              H     attention heads; hs = D // H per head
    h,w the image grid                          R     register tokens (REGISTERS)
    K   object tokens (HeadConfig.objects)      N     null object tokens (NULLS)
    A   answers in the vocabulary
"""
