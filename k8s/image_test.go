package k8s_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// docImages is the images: block k8s/README.md tells the reader to put at
// the end of k8s/base/kustomization.yaml.
func docImages(t *testing.T) (block string, newName, newTag string) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(\\s*images:\n.*?)\\s*```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("k8s/README.md has no ```yaml block starting with images:")
	}
	lines := strings.Split(string(m[1]), "\n")
	indent := len(lines[0]) - len(strings.TrimLeft(lines[0], " "))
	for i, l := range lines {
		if len(l) >= indent {
			lines[i] = l[indent:]
		}
	}
	block = strings.Join(lines, "\n") + "\n"
	var doc struct {
		Images []struct {
			Name, NewName, NewTag string
		}
	}
	if err := yaml.UnmarshalStrict([]byte(block), &doc); err != nil {
		t.Fatalf("README images block: %v\n%s", err, block)
	}
	if len(doc.Images) != 1 || doc.Images[0].Name != extauthzImage || doc.Images[0].NewName == "" || doc.Images[0].NewTag == "" {
		t.Fatalf("README images block must rename %s with newName and newTag: %+v", extauthzImage, doc.Images)
	}
	return block, doc.Images[0].NewName, doc.Images[0].NewTag
}

// withImages copies k8s/ to a temporary directory and replaces the images:
// block at the end of base/kustomization.yaml with block, as the reader does.
func withImages(t *testing.T, block string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(".")); err != nil {
		t.Fatal(err)
	}
	kpath := filepath.Join(dir, "base", "kustomization.yaml")
	k, err := os.ReadFile(kpath)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(k, []byte("\nimages:\n"))
	if i < 0 {
		t.Fatal("base/kustomization.yaml has no top-level images: entry")
	}
	for _, l := range strings.Split(string(k[i+len("\nimages:\n"):]), "\n") {
		if l != "" && !strings.HasPrefix(l, " ") {
			t.Fatalf("images: must be the last entry of base/kustomization.yaml, as k8s/README.md says; found %q after it", l)
		}
	}
	if err := os.WriteFile(kpath, append(k[:i+1], block...), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// extauthzImages renders an overlay and returns the image of every
// extauthz container in it.
func extauthzImages(t *testing.T, dir string) []string {
	t.Helper()
	o, err := decode(render(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for _, d := range o.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "extauthz" {
				images = append(images, c.Image)
			}
		}
	}
	return images
}

// TestDocumentedImageOverride follows k8s/README.md step 3 literally: the
// images: block it shows, put where it says, makes both overlays run that
// image (by tag, or by digest), with kubectl's kustomize and nothing else.
func TestDocumentedImageOverride(t *testing.T) {
	block, newName, newTag := docImages(t)
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	byDigest := regexp.MustCompile(`newTag: \S+`).ReplaceAllString(block, "digest: "+digest)
	for _, tc := range []struct {
		name, block, want string
	}{
		{"tag", block, newName + ":" + newTag},
		{"digest", byDigest, newName + "@" + digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := withImages(t, tc.block)
			for _, ov := range overlays {
				got := extauthzImages(t, filepath.Join(root, ov.dir))
				if len(got) != 1 || got[0] != tc.want {
					t.Errorf("%s: extauthz image %v, want %s", ov.dir, got, tc.want)
				}
				// kubectl itself, where it is installed: the same answer.
				if kubectl, err := exec.LookPath("kubectl"); err == nil {
					out, err := exec.Command(kubectl, "kustomize", filepath.Join(root, ov.dir)).CombinedOutput()
					if err != nil {
						t.Fatalf("kubectl kustomize %s: %v\n%s", ov.dir, err, out)
					}
					if !bytes.Contains(out, []byte("image: "+tc.want+"\n")) {
						t.Errorf("kubectl kustomize %s does not run %s", ov.dir, tc.want)
					}
				}
			}
		})
	}
}

// TestDefaultImageIsReleased: without the edit, the overlays run the image
// the release workflow publishes on a tag (ghcr.io/OWNER/extauthz, OWNER
// being cognito-extauthz upstream).
func TestDefaultImageIsReleased(t *testing.T) {
	wf, err := os.ReadFile("../.github/workflows/release.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(wf, []byte("ghcr.io/${{ github.repository_owner }}/extauthz")) {
		t.Fatal("release.yml no longer publishes ghcr.io/<owner>/extauthz; the base image reference points nowhere")
	}
	for _, ov := range overlays {
		got := extauthzImages(t, ov.dir)
		if len(got) != 1 || !strings.HasPrefix(got[0], extauthzImage+":v") {
			t.Errorf("%s: extauthz image %v, want %s:v<release>", ov.dir, got, extauthzImage)
		}
	}
}

// TestImagePushCommand: the command the docs give builds both
// architectures and pushes the IMAGE:VERSION reference they then use.
func TestImagePushCommand(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed; it is a prerequisite (CONTRIBUTING.md, Prerequisites)")
	}
	cmd := exec.Command("make", "-n", "image-push", "IMAGE=registry.example.com/you/extauthz", "VERSION=v1.2.3")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n image-push: %v\n%s", err, out)
	}
	for _, want := range []string{
		"docker buildx build", "--platform linux/amd64,linux/arm64",
		"-t registry.example.com/you/extauthz:v1.2.3", "--push",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("make image-push lacks %q:\n%s", want, out)
		}
	}
}
