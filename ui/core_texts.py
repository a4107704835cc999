"""What the core (dlplay) says that a page shows, marked for the catalog: registry names and descriptions, and the
templates of its messages (errors, run messages, preprocessing steps) with {placeholders} where it fills in values.
`ui.i18n.say` translates a core message by matching it against these; tests/unit/test_i18n.py makes the core say
each of them and checks that it comes out translated. It needs nothing from ui.i18n, which reads it."""


def N_(message: str) -> str:  # noqa: N802 (gettext's name for it, which Babel's extractor looks for)
    """Mark `message` for the catalog; ui.i18n.say translates the core's message that matches it."""
    return message


REGISTRIES = (
    # dlplay.training.schedules.SCHEDULES
    N_("the same learning rate all the way"), N_("halved at each third of the run"),
    N_("shrinks by the same factor every step, to 1% of the start at the end"),
    N_("follows half a cosine from the start down to 0"),
    N_("warms up to the set rate over the first quarter, then anneals to almost 0 (one-cycle)"),
    # dlplay.lessons.playground.DATASETS and REGULARIZERS
    N_("circle"), N_("XOR"), N_("two Gaussians"), N_("spiral"), N_("two moons"), N_("four clusters (4 classes)"),
    N_("plane (regression)"), N_("Gaussian bumps (regression)"), N_("none"),
    # dlplay.lessons.optimizers.SURFACES
    N_("ill-conditioned quadratic"), N_("Rosenbrock"), N_("Beale"), N_("Himmelblau"), N_("saddle"), N_("Rastrigin"),
    # dlplay.lessons.convolution.KERNELS
    N_("edge"), N_("blur"), N_("sharpen"), N_("Sobel x"), N_("Sobel y"), N_("identity"),
    # dlplay.classify.SAMPLE_CREDITS
    N_("Eileen Collins, NASA portrait (public domain, NASA)"),
    N_("Chelsea the cat (CC0, photo by Stefan van der Walt)"), N_("A cup of coffee (CC0, photo by Rachel Michetti)"),
    N_("A horse silhouette (public domain)"), N_("A Falcon 9 rocket on the pad (public domain, SpaceX)"),
    # dlplay.data.DATASETS
    N_("5,000 real MNIST digits, embedded (no download)"), N_("MNIST, 70,000 handwritten digits (downloads ~12 MB)"),
    N_("Fashion-MNIST, 70,000 clothing images (downloads ~30 MB)"),
    N_("CIFAR-10, 60,000 colour photos (downloads ~170 MB)"),
    # dlplay.models.MODELS
    N_("Small CNN (3 conv blocks + batch-norm), fast on CPU"),
    N_("Small CNN that downsamples with stride-2 convolutions: twice as fast, the CLI's default"),
    N_("The article's CIFAR-10 CNN (§5.3): 3 conv blocks, Dense128, Dropout"),
    N_("The article's 150x150 CNN (§5.2): 4 conv blocks, Dense512"),
    N_("torchvision's MobileNetV3-small (1.5 M parameters for 10 classes), for ImageNet weights"),
    # dlplay.training.jobs.REMEDIES and RunStatus
    N_("weighted loss"), N_("weighted sampler"), N_("queued"), N_("running"), N_("paused"), N_("finished"),
    N_("stopped"), N_("diverged"), N_("failed"), N_("crashed"),
    # dlplay.builder.LAYER_KINDS, SIZE_LABELS and LayerSpec.describe
    N_("conv"), N_("pool"), N_("batchnorm"), N_("dropout"), N_("dense"), N_("filters"), N_("units"), N_("drop %"),
    N_("conv 3×3, {size} filters + ReLU"), N_("max-pool 2×2"), N_("batch-norm"), N_("dropout {size}%"),
    N_("dense {size} + ReLU"),
    # dlplay.after_training.deploy and dlplay.after_training.compress: the forms of a model
    N_("PyTorch, float32"), N_("ONNX Runtime, float32"), N_("ONNX Runtime, int8 (static, per channel)"),
    N_("original"), N_("pruned {share}"), N_("int8 (ONNX Runtime, static)"),
    N_("distilled student ({epochs} epochs)"),
    # dlplay.device.DeviceInfo.precision
    N_("float16 mixed precision"), N_("bfloat16 mixed precision"),
    # dlplay.lessons.activations.INITS and dlplay.lessons.neuron.loss_against_probability
    N_("PyTorch default"), N_("cross-entropy −log p"), N_("MSE on a one-hot target, 2 classes: (1 − p)²"),
    # dlplay.classify.SAMPLE_NAMES
    N_("Eileen Collins, astronaut"), N_("Chelsea the cat"), N_("A cup of coffee"), N_("A horse"),
    N_("A Falcon 9 rocket"),
)

PREPROCESSING = (  # dlplay.classify.preprocess's steps
    N_("your picture"), N_("converted to grayscale"), N_("converted to colour (RGB)"),
    N_("inverted: the model learned light ink on a dark background"),
    N_("cropped to the centre and resized to {size}"), N_("no ink found: resized as it is"),
    N_("cropped to the ink"), N_("fitted into a {size} box, keeping its shape"),
    N_("centred by its centre of mass in 28×28, as MNIST's digits are"),
)

MESSAGES = (
    # dlplay.lessons.playground: a learner's CSV and network, and the docstring of the code it writes
    N_("The network playground's run in plain PyTorch: {data}, {count} points, noise {noise}."),
    N_("the file is not text (UTF-8); save it as CSV"),
    N_("the CSV needs the columns x1, x2 and label (or target); missing: {columns}"),
    N_("the CSV needs at least 4 points"), N_("the CSV has {rows} points; the playground takes at most {limit}"),
    N_("line {number} has a value that is not a number"), N_("the CSV has infinite or NaN values"),
    N_("labels must be whole numbers 0, 1, 2, …"),
    N_("every point has the same label: a classifier needs at least two classes"),
    N_("labels go up to 9 at most (10 classes)"), N_("choose at least one input feature"),
    N_("at most {layers} hidden layers of 1 to {neurons} neurons"), N_("one activation per hidden layer"),
    # dlplay.lessons.convolution: the shape table's arithmetic, and a typed kernel
    N_("{size}; params {count}"), N_("{size}; no parameters"), N_("params {count}"),
    N_("shape unchanged; no parameters"),
    N_("the kernel must be numbers only, separated by spaces or commas"),
    N_("the kernel is empty: type its rows, one per line"),
    N_("the kernel is {length} characters long; the limit is {limit}"),
    N_("the kernel must be square: {size} rows, so {count} numbers in every row"),
    N_("the kernel may have at most {size} rows"), N_("the kernel must hold finite numbers"),
    # dlplay.images
    N_("The file is empty."), N_("The file is {size} MB; the limit is {limit} MB."),
    N_("The image declares too many pixels; the limit is {limit} megapixels."),
    N_("This is not an image dlplay can read (use PNG, JPEG, WebP, BMP or GIF)."),
    N_("The image file is truncated or corrupt."),
    N_("Decoding this {size} image ({mode}) would take {cost} MB of memory; the limit is {limit} MB."),
    N_("The image declares {size} pixels; the limit is {limit} megapixels."),
    N_("The image is {size} pixels; each side needs at least {minimum}."),
    # dlplay.userdata and dlplay.data: a learner's zip, and datasets
    N_("The zip contains a path that escapes its folder ({name}); it was not imported."),
    N_("This file is not a readable .zip archive."), N_("The zip has {count} entries; the limit is {limit}."),
    N_("The zip contains a symbolic link ({name}); it was not imported."),
    N_("The zip's images decode to {total} megapixels together; the limit is {limit}. Use fewer or smaller "
       "pictures."),
    N_("Reading the zip's images took longer than {seconds} s ({done} of {count} read). Use fewer or smaller "
       "pictures."),
    N_("The zip contains a name that cannot be unpacked ({name}): it is too long, or a file and a folder share it. "
       "Rename it and try again."),
    N_("The zip is encrypted; please upload an unencrypted zip."), N_("{name} is larger than {limit} MB."),
    N_("{name} is compressed suspiciously well (a zip bomb?)."), N_("The zip unpacks to more than {limit} GB."),
    N_("Found {count} class folder(s) with readable images; at least 2 are needed (one folder per class, e.g. cats/ "
       "and dogs/)."),
    N_("not an image file (PNG, JPEG, WebP, BMP or GIF)"), N_("not inside a class folder"),
    N_("this test class has no training folder"),
    N_("There are no training images to learn from: use more of the data."),
    N_("There are no test images to measure the model with: every class needs at least 2 images (one to learn from, "
       "one to test on), and {classes} have fewer."),
    N_("Every training image is the very same picture, so nothing tells the classes apart: check what the images "
       "are."),
    N_("Downloading {name}: file {number} of {count} ({file})"), N_("{name}: downloaded"),
    N_("Could not download the {name} dataset into {folder} ({error}). To use it offline, download it on another "
       "machine and place {files}, or use the embedded 'mnist5k' dataset, which needs no download."),
    N_("Could not load the {name} dataset into {folder} (download failed or files unreadable: {error}). To use it "
       "offline, download it on another machine and place {files}, or use the embedded 'mnist5k' dataset, which "
       "needs no download."),
    # dlplay.checkpoint and dlplay.after_training.transfer: model files and weights
    N_("{name} is a Git LFS pointer, not the model itself: run `git lfs pull` to fetch the real file"),
    N_("{name} is not a readable .safetensors file"),
    N_("{name} has no dlplay metadata, so its architecture is unknown"), N_("{name} has malformed dlplay metadata"),
    N_("unknown architecture {name}; dlplay knows {known}"),
    N_("the file describes a model that cannot be built: {reason}"),
    N_("{name} describes a model of {count} parameters; the limit is {limit}"),
    N_("{name} describes a model through which one image makes {count} values; the limit is {limit}"),
    N_("weights do not fit {architecture}: {what}"),
    N_("the ImageNet weights for {architecture} could not be downloaded from {url} ({error}); download that file on "
       "a machine online and put it in {folder}"),
    N_("{path} is not the file that was published: its SHA-256 begins {found}, not {prefix}; delete it and "
       "download it again"),
    N_("{path} could not be read as weights ({error})"),
    N_("{name} carries no SHA-256 prefix in its name, so it cannot be checked"),
    N_("the model to start from takes {size} images and these are {images}"),
    N_("the model to start from is a {architecture}, not a {model}"),
    # dlplay.builder: a learner's layer stack
    N_("Layer {number} ({layer}): the drop rate must be from 0 to 99%."),
    N_("Layer {number} ({layer}): needs at least 1 {unit}."),
    N_("Layer {number} ({layer}) comes after a dense layer: it needs a feature map. Move it above the dense layers."),
    N_("Layer {number} ({layer}) gets a {size} feature map, which a 3×3 convolution would shrink below 1×1. Remove "
       "a layer above it or use larger images."),
    N_("Layer {number} ({layer}) gets a {size} feature map, which pooling would shrink below 1×1. Remove it or a "
       "layer above it."),
    # dlplay.training.jobs: settings and a run's messages
    N_("{name}={value} is not a whole number"), N_("{name}={value} is not a number"),
    N_("{name} must be at least {minimum}, got {value}"),
    N_("the Ray cluster at {address} asks for a token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to its token (or "
       "RAY_AUTH_TOKEN_PATH to a file that holds it)"),
    N_("RAY_AUTH_MODE=token, but no Ray token was found: set RAY_AUTH_TOKEN to the token of the cluster at {address} "
       "(or RAY_AUTH_TOKEN_PATH to a file that holds it)"),
    N_("the Ray cluster at {address} refused this token: set RAY_AUTH_TOKEN to the token it was started with (or "
       "RAY_AUTH_TOKEN_PATH to a file that holds it); `ray get-auth-token` on its head prints it"),
    N_("could not connect to the Ray cluster at {address}: check that the cluster is running and that this is its "
       "head's address"),
    N_("the server is full: {count} runs are waiting for a training slot; try again in about {minutes} minute(s)"),
    N_("the server is full: {count} runs are waiting for a training slot; try again in a few minutes"),
    N_("this browser already has {count} run(s) training or waiting, as many as the server allows one browser; stop "
       "one first"),
    N_("this run belongs to another browser; only the browser that started it can resume it"),
    N_("Nobody watched this run for {minutes} minute(s), so it stopped to free its training slot. {message}"),
    N_("Cancelled while waiting for a training slot."),
    # dlplay.training.jobs.lane and labs: labs in the worker lane
    N_("this browser already has a lab running or waiting; let it finish or cancel it"),
    N_("the server is full: {count} labs are waiting for a slot; try again in a few minutes"),
    N_("Cancelled."), N_("The lab's process stopped unexpectedly; run it again."), N_("The lab failed: {error}"),
    N_("The server stopped before this lab could start."),
    N_("Unpacking and decoding the images..."), N_("Exporting to ONNX, checking, quantizing and timing..."),
    N_("Pruning, quantizing, distilling and timing..."), N_("Pre-training on 0–4, then six runs on 5–9..."),
    N_("{arm}: round {round} of {rounds}"), N_("FedAvg"), N_("centralised (all images pooled)"),
    N_("The zip's {count} images at {size} would take {mb} MB; the limit is {limit} MB. Choose a smaller size or "
       "use fewer pictures."),
    N_("Waiting for a free training slot."), N_("Paused."), N_("Holding after step {step}; press Resume to go on."),
    N_("Training."), N_("Training failed: {reason}"),
    N_("Trained {epochs} epoch(s) in {seconds} s; test accuracy {accuracy}."),
    N_("{message} test accuracy {accuracy}."),
    N_("Stopped; the model keeps the weights it had reached."),
    N_("Loss diverged at step {step}: lower the learning rate (the model keeps the last good weights)."),
    N_("Out of memory: restarted with batch size {size}. {message}"),
    N_("Out of memory on the GPU: restarted on the CPU. {message}"),
    N_("{gpu} (compute capability {capability}) is not supported by this PyTorch build, which has kernels for "
       "{archs}: training on the CPU. {message}"),
    N_("{gpu} (compute capability {capability}) is not supported by this PyTorch build, which has kernels for "
       "{archs}; use 'cpu'"),
    N_("Apple's GPU is busy with another run: training on the CPU. {message}"),
    N_("The lab ran out of memory; run it again when fewer labs and runs are going."),
    N_("The training process stopped unexpectedly before its first checkpoint; start the run again."),
    N_("The training process stopped unexpectedly after its last epoch; resume to evaluate."),
    N_("The training process stopped unexpectedly; resume from epoch {next} (its checkpoint was saved after epoch "
       "{epoch})."),
)
