"""The LoNAS elastic super-adapter of a pretrained LLaMA: LoRA factors (`lora`), their training with
the sandwich rule (`train`), storage (`store`) and subnet evaluation (`evaluate`)."""
