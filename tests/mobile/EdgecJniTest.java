import edgec.models.Model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;

/**
 * Drives the generated edgec.models.Model from a JVM. usage: MODES IN... OUT...
 * MODES, comma-separated: floats (run(float[]...) / run(float[])), bytes (run(ByteBuffer...)),
 * zerocopy (inputBuffer / run() / outputBuffer); each writes OUT.MODE. Prints the typed I/O
 * info and the error checks.
 */
public class EdgecJniTest {
    public static void main(String[] args) throws Exception {
        String[] modes = args[0].split(",");
        int nIn = Model.INPUTS.length, nOut = Model.OUTPUTS.length;
        for (Model.TensorInfo t : Model.INPUTS) System.out.println("input " + describe(t));
        for (Model.TensorInfo t : Model.OUTPUTS) System.out.println("output " + describe(t));
        byte[][] in = new byte[nIn][];
        for (int i = 0; i < nIn; ++i) in[i] = Files.readAllBytes(Paths.get(args[1 + i]));
        byte[][] out = new byte[nOut][];
        Model m = Model.load();
        for (String mode : modes) {
            // Zero the arena's inputs, so no mode sees what the previous one wrote there.
            for (int i = 0; i < nIn; ++i) m.inputBuffer(i).put(new byte[Model.INPUTS[i].bytes]);
            if (mode.equals("floats")) {
                float[][] xs = new float[nIn][];
                for (int i = 0; i < nIn; ++i) {
                    FloatBuffer fb = ByteBuffer.wrap(in[i]).order(ByteOrder.nativeOrder()).asFloatBuffer();
                    xs[i] = new float[fb.remaining()];
                    fb.get(xs[i]);
                }
                float[][] ys = (nIn == 1 && nOut == 1) ? new float[][] {m.run(xs[0])} : m.run(xs);
                for (int k = 0; k < nOut; ++k) {
                    ByteBuffer b = ByteBuffer.allocate(ys[k].length * 4).order(ByteOrder.nativeOrder());
                    b.asFloatBuffer().put(ys[k]);
                    out[k] = b.array();
                }
            } else if (mode.equals("bytes")) {
                ByteBuffer[] xs = new ByteBuffer[nIn];
                for (int i = 0; i < nIn; ++i) xs[i] = ByteBuffer.wrap(in[i]);
                ByteBuffer[] ys = m.run(xs);
                for (int k = 0; k < nOut; ++k) {
                    out[k] = new byte[ys[k].remaining()];
                    ys[k].get(out[k]);
                }
            } else {
                for (int i = 0; i < nIn; ++i) m.inputBuffer(i).put(in[i]);
                m.run();
                for (int k = 0; k < nOut; ++k) {
                    out[k] = new byte[Model.OUTPUTS[k].bytes];
                    m.outputBuffer(k).get(out[k]);
                }
            }
            for (int k = 0; k < nOut; ++k) Files.write(Paths.get(args[1 + nIn + k] + "." + mode), out[k]);
        }

        try {
            m.run(new ByteBuffer[] {ByteBuffer.allocate(1)});
            System.out.println("check wrong-size: no exception");
        } catch (IllegalArgumentException e) {
            System.out.println("check wrong-size: " + e.getMessage());
        }
        m.close();
        try {
            m.run();
            System.out.println("check closed: no exception");
        } catch (IllegalStateException e) {
            System.out.println("check closed: " + e.getMessage());
        }
    }

    private static String describe(Model.TensorInfo t) {
        return t.name + " " + t.dtype + " " + Arrays.toString(t.shape) + " " + t.bytes;
    }
}
